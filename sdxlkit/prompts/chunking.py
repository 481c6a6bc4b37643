"""Tokens in 75-token chunks, each wrapped in BOS/EOS and padded to 77 (A1111 / sd_embed style). No torch.

A chunk is what one pass of a CLIP text encoder sees: ``[BOS] + up to 75 tokens + [EOS] + padding``, padding with
the tokenizer's own pad token (CLIP-L pads with ``<|endoftext|>``, OpenCLIP bigG with ``!`` = id 0), exactly as
diffusers pads a short prompt. A prompt of at most 75 tokens therefore gives one chunk with the same ids as
``StableDiffusionXLPipeline.encode_prompt``. BOS, EOS and padding always have weight 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass

from .a1111 import BREAK, Item

CHUNK_TOKENS = 75  # prompt tokens per chunk
CHUNK_LENGTH = CHUNK_TOKENS + 2  # with BOS and EOS: the CLIP context length
COMMA_TOKEN = ",</w>"
COMMA_BACKTRACK = 20  # A1111's default comma_padding_backtrack


@dataclass(frozen=True)
class Chunk:
    """77 token ids and their 77 weights."""

    ids: tuple[int, ...]
    weights: tuple[float, ...]


def tokenize_fragment(tokenizer, text: str | tuple[int, ...]) -> list[int]:
    """Token ids of ``text`` without BOS/EOS and without truncation; a tuple is token ids already (token_prompt)."""
    if isinstance(text, tuple):
        return list(text)
    if not text:
        return []
    return list(tokenizer(text, add_special_tokens=False, truncation=False, verbose=False).input_ids)


def _units(tokenizer, ids: list[int]) -> list[list[int]]:
    """Tokens that must share a chunk: a textual inversion's vectors (sdxlkit.embeddings), else single tokens."""
    units = getattr(tokenizer, "units", None)
    return units(ids) if units is not None else [[i] for i in ids]


def _close(tokenizer, ids: list[int], weights: list[float]) -> Chunk:
    pad = CHUNK_TOKENS - len(ids)
    return Chunk(
        ids=tuple([tokenizer.bos_token_id, *ids, tokenizer.eos_token_id] + [tokenizer.pad_token_id] * pad),
        weights=tuple([1.0, *weights, 1.0] + [1.0] * pad),
    )


def build_chunks(tokenizer, items: list[Item], comma_backtrack: int = 0) -> list[Chunk]:
    """Chunks for parsed prompt ``items`` (``(text, weight)`` pairs and ``BREAK`` markers).

    Every fragment is tokenized on its own (as A1111 and sd_embed do); a chunk is closed when it holds 75 tokens
    and another follows, or when a textual inversion's vectors would not fit in it (A1111), and at each ``BREAK`` (even an empty chunk, as A1111: a leading ``BREAK`` gives an empty
    first chunk). A last, empty chunk is kept only when there is no other: the empty prompt gives one chunk.

    ``comma_backtrack`` = n > 0 is A1111's "comma padding backtrack" (``sd_hijack_clip.tokenize_line``, default
    20, used under sdEmbeds): when a full chunk meets a token that is not a comma and its last comma is at most n
    tokens back, the tokens after that comma move to the next chunk, so a phrase is not cut in two. With 0 (plain
    prompts) chunks are cut at exactly 75 tokens. (ComfyUI instead moves a whole word of fewer than 8 tokens to the
    next chunk.)
    """
    chunks: list[Chunk] = []
    ids: list[int] = []
    weights: list[float] = []
    last_comma = -1
    comma = tokenizer.convert_tokens_to_ids(COMMA_TOKEN)

    def close(keep: int) -> None:
        nonlocal ids, weights, last_comma
        chunks.append(_close(tokenizer, ids[:keep], weights[:keep]))
        ids, weights, last_comma = ids[keep:], weights[keep:], -1

    for item in items:
        if item is BREAK:
            close(len(ids))
            continue
        text, weight = item
        for unit in _units(tokenizer, tokenize_fragment(tokenizer, text)):
            if unit == [comma]:
                last_comma = len(ids)
            elif comma_backtrack and len(unit) == 1 and len(ids) == CHUNK_TOKENS and last_comma != -1 \
                    and len(ids) - last_comma <= comma_backtrack:
                close(last_comma + 1)
            if len(ids) + len(unit) > CHUNK_TOKENS:
                close(len(ids))
            ids += unit
            weights += [float(weight)] * len(unit)
    if ids or not chunks:
        close(len(ids))
    return chunks
