"""Node widgets whose range, step and default come from the imageInference schema (one source of truth). Each keeps
its field's path as `schema_path`, so nodes/input_checks.py checks its value by the field's rules at queue time."""

from __future__ import annotations

from ..sdxlkit.task import schema
from ..sdxlkit.task.model import LOCAL_DEFAULTS
from ._api import io

# Upper bounds for widgets whose schema field has none.
OPEN_MAXIMUM = {"outpaint.top": 2048, "outpaint.right": 2048, "outpaint.bottom": 2048, "outpaint.left": 2048}


def _bounds(path: str) -> dict:
    f = schema.field(path)
    default = f.get("default", LOCAL_DEFAULTS.get(path))
    return {"min": f.get("minimum"), "max": f.get("maximum", OPEN_MAXIMUM.get(path)), "default": default}


def int_widget(id: str, path: str, **kwargs) -> io.Int.Input:
    b = _bounds(path)
    b.update(kwargs)
    b.setdefault("step", schema.field(path).get("multipleOf", 1))
    if b["default"] is None:
        b["default"] = b["min"]
    return _keeps_path(io.Int.Input(id, **b), path)


def _keeps_path(widget, path: str):
    widget.schema_path = path
    return widget


def float_widget(id: str, path: str, step: float = 0.01, **kwargs) -> io.Float.Input:
    b = _bounds(path)
    b.update(kwargs)
    return _keeps_path(io.Float.Input(id, step=step, round=step, **b), path)


def combo_widget(id: str, path: str, unset: str | None = None, **kwargs) -> io.Combo.Input:
    """`unset`: a first choice, and the default, that leaves the field out of the task."""
    options = [unset, *schema.enum(path)] if unset is not None else schema.enum(path)
    default = unset if unset is not None else schema.default(path)
    return _keeps_path(io.Combo.Input(id, options=options, default=default, **kwargs), path)
