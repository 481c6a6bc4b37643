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


@dataclass(frozen=True)
class Chunk:
    """77 token ids and their 77 weights."""

    ids: tuple[int, ...]
    weights: tuple[float, ...]


def tokenize_fragment(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` without BOS/EOS and without truncation."""
    if not text:
        return []
    return list(tokenizer(text, add_special_tokens=False, truncation=False, verbose=False).input_ids)


def _close(tokenizer, ids: list[int], weights: list[float]) -> Chunk:
    pad = CHUNK_TOKENS - len(ids)
    return Chunk(
        ids=tuple([tokenizer.bos_token_id, *ids, tokenizer.eos_token_id] + [tokenizer.pad_token_id] * pad),
        weights=tuple([1.0, *weights, 1.0] + [1.0] * pad),
    )


def empty_chunk(tokenizer) -> Chunk:
    """The chunk of the empty prompt: BOS, EOS, padding."""
    return _close(tokenizer, [], [])


Token = tuple[int, float]  # token id, weight


def token_stream(tokenizer, items: list[Item]) -> list:
    """The prompt as ``(id, weight)`` tokens and ``BREAK`` markers; every fragment tokenized on its own (as A1111
    and sd_embed do)."""
    stream: list = []
    for item in items:
        if item is BREAK:
            stream.append(BREAK)
            continue
        text, weight = item
        stream.extend((token, float(weight)) for token in tokenize_fragment(tokenizer, text))
    return stream


def chunk_tokens(tokenizer, stream: list) -> tuple[list[Chunk], list[int]]:
    """Chunks for a token stream, and where each token of the stream (BREAKs left out) landed in the chunks'
    concatenated sequence.

    A chunk is closed when it holds 75 tokens and another follows, and at each ``BREAK`` (even an empty chunk, as
    A1111: a leading ``BREAK`` gives an empty first chunk). A last, empty chunk is kept only when there is no
    other: the empty prompt gives one chunk. No comma back-tracking (A1111's "comma padding" option): chunks are
    cut at exactly 75 tokens.
    """
    chunks: list[Chunk] = []
    positions: list[int] = []
    ids: list[int] = []
    weights: list[float] = []
    for token in stream:
        if token is BREAK:
            chunks.append(_close(tokenizer, ids, weights))
            ids, weights = [], []
            continue
        if len(ids) == CHUNK_TOKENS:
            chunks.append(_close(tokenizer, ids, weights))
            ids, weights = [], []
        positions.append(len(chunks) * CHUNK_LENGTH + 1 + len(ids))
        ids.append(token[0])
        weights.append(token[1])
    if ids or not chunks:
        chunks.append(_close(tokenizer, ids, weights))
    return chunks, positions


def build_chunks(tokenizer, items: list[Item]) -> list[Chunk]:
    """Chunks for parsed prompt ``items`` (``(text, weight)`` pairs and ``BREAK`` markers), see chunk_tokens."""
    return chunk_tokens(tokenizer, token_stream(tokenizer, items))[0]


def pad_chunks(chunks: list[Chunk], count: int, tokenizer) -> list[Chunk]:
    """``chunks`` followed by empty-prompt chunks up to ``count`` chunks."""
    return list(chunks) + [empty_chunk(tokenizer)] * (count - len(chunks))
