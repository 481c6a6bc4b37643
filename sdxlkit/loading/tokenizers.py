"""The two CLIP tokenizers of SDXL, built from the vocabulary shipped in sdxlkit/data (no hub access)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

TOKENIZER_DIR = Path(__file__).resolve().parent.parent / "data" / "clip_tokenizer"
MAX_LENGTH = 77


@lru_cache(maxsize=1)
def load_clip_tokenizers():
    """Return (tokenizer, tokenizer_2): CLIP-L pads with <|endoftext|>, OpenCLIP bigG pads with "!" (id 0)."""
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR), model_max_length=MAX_LENGTH, local_files_only=True)
    tokenizer_2 = CLIPTokenizer.from_pretrained(
        str(TOKENIZER_DIR), model_max_length=MAX_LENGTH, pad_token="!", local_files_only=True
    )
    return tokenizer, tokenizer_2
