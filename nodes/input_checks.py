"""Queue-time checks of a node's widget values, for V3 `validate_inputs`: ComfyUI 0.3.64 checks neither V3 combo
values nor, once a node defines validate_inputs, any min/max, so every rule is checked here.

Use it in any node of the pack by deriving from CheckedNode instead of io.ComfyNode, or in a validate_inputs of
its own:

    @classmethod
    def validate_inputs(cls, **values):
        return check_widget_values(cls, values)

Each widget is checked against its own declaration (combo options, min/max, finite numbers, type) and, where
nodes/widgets.py built it from a task field (or `fields` maps it to one, e.g. {"positive_prompt": "positivePrompt"}),
against that field's schema rules too (multipleOf, minLength, ...). The answer is True or one message naming every
input that is wrong and what it allows.
"""

from __future__ import annotations

import math
from typing import Any

from ..sdxlkit.task import schema
from ..sdxlkit.task.validate import describe_allowed
from ._api import io

SHOWN_OPTIONS = 12


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _schema_problem(value: Any, path: str) -> str | None:
    from jsonschema import Draft202012Validator

    sub = schema.field(path)
    if next(Draft202012Validator(sub).iter_errors(value), None) is None:
        return None
    return f"got {_show(value)}; allowed: {describe_allowed(sub)}"


def _declared_problem(widget, value: Any) -> str | None:
    kind = str(getattr(widget, "io_type", ""))
    if kind == "COMBO":
        options = list(getattr(widget, "options", None) or [])
        if value in options:
            return None
        shown = ", ".join(map(_show, options[:SHOWN_OPTIONS])) + (f", ... ({len(options)} in all)" if len(options) > SHOWN_OPTIONS else "")
        return f"got {_show(value)}; allowed: one of {shown or '(none: the folder is empty)'}"
    if kind in ("INT", "FLOAT"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind == "INT" and not isinstance(value, int)):
            return f"got {_show(value)}; allowed: {'an integer' if kind == 'INT' else 'a number'}"
        if not math.isfinite(value):
            return f"got {value}; allowed: a finite number"
        low, high = getattr(widget, "min", None), getattr(widget, "max", None)
        if (low is not None and value < low) or (high is not None and value > high):
            return f"got {_show(value)}; allowed: {low if low is not None else '-inf'}..{high if high is not None else 'inf'}"
        return None
    if kind == "BOOLEAN" and not isinstance(value, bool):
        return f"got {_show(value)}; allowed: true or false"
    if kind == "STRING" and not isinstance(value, str):
        return f"got {_show(value)}; allowed: text"
    return None


def widget_problems(inputs: list, values: dict, fields: dict[str, str] | None = None) -> list[str]:
    """'<input>: <what is wrong>; allowed: ...' for each widget value in `values` that breaks its rules."""
    fields = fields or {}
    problems = []
    for widget in inputs:
        if values.get(widget.id) is None or getattr(widget, "force_input", False):
            continue  # a linked input: ComfyUI passes None, its value is not known before execution
        value = values[widget.id]
        problem = _declared_problem(widget, value)
        path = fields.get(widget.id, getattr(widget, "schema_path", None))
        if problem is None and path is not None:
            problem = _schema_problem(value, path)
        if problem is not None:
            problems.append(f"{widget.id}: {problem}")
    return problems


def check_widget_values(node_class, values: dict, fields: dict[str, str] | None = None) -> bool | str:
    """For a node's validate_inputs: True, or the message listing every wrong input."""
    problems = widget_problems(node_class.define_schema().inputs, values, fields)
    return True if not problems else "; ".join(problems)


class CheckedNode(io.ComfyNode):
    """A node whose widget values are checked at queue time (POST /prompt and the task route), before anything runs.
    WIDGET_FIELDS maps widgets not built by nodes/widgets.py to the task field whose rules they follow."""

    WIDGET_FIELDS: dict[str, str] = {}

    @classmethod
    def validate_inputs(cls, **values) -> bool | str:
        return check_widget_values(cls, values, cls.WIDGET_FIELDS)
