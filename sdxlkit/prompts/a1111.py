"""Parser for A1111 emphasis syntax (promptWeighting "sdEmbeds"). Pure Python, no torch.

Syntax, as in AUTOMATIC1111's ``parse_prompt_attention`` (which sd_embed copies):

- ``(text)`` multiplies the weight of ``text`` by 1.1, ``((text))`` by 1.1², and so on;
- ``[text]`` divides it by 1.1;
- ``(text:1.5)`` multiplies it by 1.5 (spaces around the number are allowed, as in current A1111);
- brackets nest, and the factors multiply;
- ``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\`` are literal characters; any other backslash is dropped (as A1111 does);
- ``BREAK`` (upper case, a word of its own) ends the current 75-token chunk;
- unbalanced brackets are handled like A1111: a ``)`` or ``]`` with no opener is literal text, and an opener
  never closed applies its factor (1.1 or 1/1.1) to everything after it; ``:1.5)`` with no open ``(`` is text.

Differences from A1111, on purpose: a ``BREAK`` inside brackets still ends the chunk (A1111 would give the
marker the bracket's weight and then encode the word "break" with a negative weight), and a weight that is not a
number, such as ``(a:1.2.3)``, raises a clear error instead of a Python ``ValueError``.
"""

from __future__ import annotations

import re
from typing import Union

from ..errors import SdxlKitError

ROUND_FACTOR = 1.1
SQUARE_FACTOR = 1 / 1.1

_WEIGHT_CLOSE = re.compile(r":\s*([+-]?[.\d]+)\s*\)")
_BREAK = re.compile(r"\s*\bBREAK\b\s*")
_SPECIAL = "\\()[]:"
_ESCAPABLE = "()[]\\"


class Break:
    """The marker for ``BREAK``: ends the current chunk. Use the module constant ``BREAK``."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "BREAK"


BREAK = Break()

Item = Union[tuple[str, float], Break]


def parse_a1111(text: str) -> list[Item]:
    """Split ``text`` into ``(fragment, weight)`` pairs and ``BREAK`` markers.

    Adjacent fragments of equal weight are merged, empty fragments dropped; a prompt with no text gives
    ``[("", 1.0)]``. Example: ``parse_a1111("an (important) word")`` ->
    ``[("an ", 1.0), ("important", 1.1), (" word", 1.0)]``.
    """
    items: list[list] = []  # [text, weight] or [BREAK, None]
    round_open: list[int] = []
    square_open: list[int] = []

    def scale_from(start: int, factor: float) -> None:
        for item in items[start:]:
            if item[0] is not BREAK:
                item[1] *= factor

    def add_text(chunk: str) -> None:
        parts = _BREAK.split(chunk)
        for i, part in enumerate(parts):
            if i > 0:
                items.append([BREAK, None])
            items.append([part, 1.0])

    pos, n = 0, len(text)
    while pos < n:
        ch = text[pos]
        if ch == "\\":
            if pos + 1 < n and text[pos + 1] in _ESCAPABLE:
                items.append([text[pos + 1], 1.0])
                pos += 2
            else:
                pos += 1  # a lone backslash is dropped, as in A1111
        elif ch == "(":
            round_open.append(len(items))
            pos += 1
        elif ch == "[":
            square_open.append(len(items))
            pos += 1
        elif ch == ":":
            m = _WEIGHT_CLOSE.match(text, pos)
            if m and round_open:
                try:
                    factor = float(m.group(1))
                except ValueError:
                    raise SdxlKitError(
                        f"prompt weight {m.group(1)!r} in {m.group(0)!r} is not a number; write it like (word:1.2)"
                    ) from None
                scale_from(round_open.pop(), factor)
                pos = m.end()
            elif m:
                add_text(m.group(0))
                pos = m.end()
            else:
                add_text(":")
                pos += 1
        elif ch == ")":
            if round_open:
                scale_from(round_open.pop(), ROUND_FACTOR)
            else:
                add_text(")")
            pos += 1
        elif ch == "]":
            if square_open:
                scale_from(square_open.pop(), SQUARE_FACTOR)
            else:
                add_text("]")
            pos += 1
        else:
            end = pos
            while end < n and text[end] not in _SPECIAL:
                end += 1
            add_text(text[pos:end])
            pos = end

    for start in round_open:
        scale_from(start, ROUND_FACTOR)
    for start in square_open:
        scale_from(start, SQUARE_FACTOR)

    merged: list[Item] = []
    for piece, weight in items:
        if piece is BREAK:
            merged.append(BREAK)
        elif piece == "":
            continue
        elif merged and merged[-1] is not BREAK and merged[-1][1] == weight:
            merged[-1] = (merged[-1][0] + piece, weight)
        else:
            merged.append((piece, weight))
    return merged or [("", 1.0)]


def has_weights(items: list[Item]) -> bool:
    """True when some fragment has a weight other than 1.0."""
    return any(item is not BREAK and item[1] != 1.0 for item in items)
