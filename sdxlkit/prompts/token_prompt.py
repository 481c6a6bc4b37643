"""A prompt given as tokens, for features that edit a prompt token by token (PhotoMaker's trigger word).

A ``TokenPrompt`` is the prompt's text (a ``str``, so every check of the text applies) that also carries, per
tokenizer, its parsed items with each fragment already tokenized: ``(tuple of token ids, weight)`` in place of
``(text, weight)``, and ``BREAK`` markers. ``encode_prompts`` chunks and encodes those items as it would the parsed
text (plain and sdEmbeds weighting; compel builds its own tokens)."""

from __future__ import annotations

from .a1111 import BREAK, Item
from .chunking import tokenize_fragment


class TokenPrompt(str):
    items: tuple[list, ...]  # one item list per tokenizer

    def __new__(cls, text: str, items):
        prompt = super().__new__(cls, text)
        prompt.items = tuple(items)
        return prompt


def tokenized(tokenizer, items: list[Item]) -> list:
    """Parsed prompt items with each fragment's text replaced by its token ids (as the chunking tokenizes it)."""
    return [item if item is BREAK else (tuple(tokenize_fragment(tokenizer, item[0])), item[1]) for item in items]


def prompt_items(prompt: str, index: int, parse) -> list:
    """The items tokenizer `index` encodes: a TokenPrompt's own, else the parsed text."""
    return prompt.items[index] if isinstance(prompt, TokenPrompt) else parse(prompt)
