"""Finding NaN and Infinity in decoded JSON: Python's json module reads NaN, Infinity and 1e999 as floats that pass
every range check (NaN compares false with everything), so they are looked for on their own."""

from __future__ import annotations

import math
from typing import Any


def non_finite(value: Any, root: str = "$") -> list[tuple[str, float]]:
    """(JSON path, value) of every NaN or infinite number inside `value`, in document order."""
    found, stack = [], [(root, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            found.append((path, item))
        elif isinstance(item, dict):
            stack += reversed([(f"{path}.{key}", v) for key, v in item.items()])
        elif isinstance(item, (list, tuple)):
            stack += reversed([(f"{path}[{i}]", v) for i, v in enumerate(item)])
    return found


def finite_message(number: float) -> str:
    return f"got {number}; must be a finite number (NaN and Infinity are not numbers a task can use)"
