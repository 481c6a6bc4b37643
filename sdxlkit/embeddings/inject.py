"""Textual inversions injected at encode time.

Nothing is added to a tokenizer or a text encoder: an embedding's name in a prompt (`name` or ComfyUI's
`embedding:name`, optionally with the file extension; case-insensitive, a whole word) becomes one placeholder
token id per vector, above the tokenizer's vocabulary. While a prompt is encoded, a pre-hook on each text encoder
swaps placeholder ids for a harmless id (so CLIP's end-of-text pooling is unaffected) and a hook on its token
embedding layer puts the embedding's vectors, times the entry's weight, at their positions. The hooks are removed
afterwards, so the model is bit-identical to a fresh load and no vocabulary grows across tasks.

CLIP-L gets the file's `clip_l` vectors, bigG its `clip_g` vectors (the refiner, bigG only, gets `clip_g`).
Prompt chunks never split an embedding (A1111): one that does not fit starts the next chunk. compel cuts long
prompts itself and may split one.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator

from ..errors import SdxlKitError
from .files import TextualInversion

ENCODER_KEYS = {2: ("clip_l", "clip_g"), 1: ("clip_g",)}  # SDXL base (CLIP-L, bigG); refiner (bigG)
STAND_IN_ID = 0  # what the encoder sees at a placeholder before its embedding row is replaced
_EXTENSIONS = r"(?:\.(?:safetensors|pt|bin))?"


def repeated_token(files: list[TextualInversion]) -> tuple[int, int] | None:
    """(i, j) for the first file i whose token (its file name, any case) file j < i has too, else None."""
    first: dict[str, int] = {}
    for i, ti in enumerate(files):
        j = first.setdefault(ti.name.lower(), i)
        if j != i:
            return i, j
    return None


class PromptEmbeddings:
    """The embeddings of one run with their weights; placeholder i of the run is vector i of them in order."""

    def __init__(self, entries: list[tuple[TextualInversion, float]]):
        names = [ti.name.lower() for ti, _ in entries]
        repeated = repeated_token([ti for ti, _ in entries])
        if repeated:
            raise SdxlKitError(f"embeddings: the token {names[repeated[0]]!r} is given twice; each embedding file name "
                               "must be unique")
        self.entries = list(entries)
        self.offsets: dict[str, tuple[int, int]] = {}  # name -> (first placeholder offset, vectors)
        offset = 0
        for ti, _ in self.entries:
            self.offsets[ti.name.lower()] = (offset, ti.vectors)
            offset += ti.vectors
        alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        self.pattern = re.compile(rf"(?<![\w])(?:embedding:)?({alternatives}){_EXTENSIONS}(?![\w])", re.IGNORECASE)

    def rows(self, key: str, width: int, what: str):
        """The weighted vectors of every embedding for one encoder: [total vectors, width] float32."""
        import torch

        for ti, _ in self.entries:
            got = getattr(ti, key).shape[-1]
            if got != width:
                raise SdxlKitError(f"embedding {ti.name}: its {key} vectors are {got} wide but this model's {what} "
                                   f"takes {width}; is it an embedding for another model?")
        return torch.cat([getattr(ti, key) * float(weight) for ti, weight in self.entries])

    @contextmanager
    def applied(self, tokenizers, text_encoders) -> Iterator[tuple]:
        """Tokenizers that write the placeholders, with the vectors injected into `text_encoders` meanwhile."""
        keys = ENCODER_KEYS[len(text_encoders)]
        handles = []
        try:
            wrapped = []
            for tokenizer, encoder, key in zip(tokenizers, text_encoders, keys):
                first = len(tokenizer)
                layer = encoder.get_input_embeddings()
                handles += _inject(encoder, layer, first, self.rows(key, layer.embedding_dim, key.replace("_", "-").upper()))
                wrapped.append(EmbeddingTokenizer(tokenizer, self, first))
            yield tuple(wrapped)
        finally:
            for handle in handles:
                handle.remove()


def _inject(encoder, layer, first: int, rows) -> list:
    state: dict = {}

    def swap_placeholders(module, args, kwargs):
        ids = kwargs["input_ids"] if "input_ids" in kwargs else args[0]
        placeholders = ids >= first
        state["positions"] = placeholders
        state["rows"] = rows.to(ids.device)[ids[placeholders] - first]
        ids = ids.masked_fill(placeholders, STAND_IN_ID)
        if "input_ids" in kwargs:
            return args, kwargs | {"input_ids": ids}
        return (ids, *args[1:]), kwargs

    def put_vectors(module, inputs, output):
        positions = state.pop("positions", None)
        if positions is None or not bool(positions.any()):
            return output
        output = output.clone()
        output[positions] = state.pop("rows").to(output.dtype)
        return output

    return [encoder.register_forward_pre_hook(swap_placeholders, with_kwargs=True), layer.register_forward_hook(put_vectors)]


class EmbeddingTokenizer:
    """A tokenizer that writes an embedding's name as its placeholder ids; everything else is the wrapped one's."""

    def __init__(self, tokenizer, embeddings: PromptEmbeddings, first: int):
        self._tokenizer, self._embeddings, self._first = tokenizer, embeddings, first
        self._starts = {first + offset: vectors for offset, vectors in embeddings.offsets.values()}

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)

    def __len__(self) -> int:
        return len(self._tokenizer)

    def _plain(self, text: str) -> list[int]:
        if not text:
            return []
        return list(self._tokenizer(text, add_special_tokens=False, truncation=False, verbose=False).input_ids)

    def ids(self, text: str) -> list[int]:
        """Token ids of `text` without BOS/EOS, each embedding name replaced by its placeholders."""
        ids, position = [], 0
        for match in self._embeddings.pattern.finditer(text):
            offset, vectors = self._embeddings.offsets[match.group(1).lower()]
            ids += self._plain(text[position:match.start()]) + list(range(self._first + offset, self._first + offset + vectors))
            position = match.end()
        return ids + self._plain(text[position:])

    def __call__(self, text, add_special_tokens: bool = True, truncation: bool = False, **_):
        from transformers import BatchEncoding

        texts = [text] if isinstance(text, str) else list(text)
        out = []
        for t in texts:
            ids = self.ids(t)
            if truncation:
                ids = ids[:self._tokenizer.model_max_length - (2 if add_special_tokens else 0)]
            out.append([self.bos_token_id, *ids, self.eos_token_id] if add_special_tokens else ids)
        return BatchEncoding({"input_ids": out[0] if isinstance(text, str) else out})

    def convert_ids_to_tokens(self, ids):
        return [f"<embedding-{i - self._first}></w>" if i >= self._first else self._tokenizer.convert_ids_to_tokens(i)
                for i in ids]

    def units(self, ids: list[int]) -> list[list[int]]:
        """`ids` grouped so that each embedding's placeholders stay together (a chunk never splits them)."""
        units, i = [], 0
        while i < len(ids):
            size = self._starts.get(ids[i], 1)
            units.append(ids[i:i + size])
            i += size
        return units
