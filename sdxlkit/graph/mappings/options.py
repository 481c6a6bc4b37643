"""The option nodes (graph/option_nodes.py): each evaluates to a TaskPart with its fields, and is built for a task
that has any of them."""

from __future__ import annotations

from ...task import schema
from ..mapping import ConvertOptions, NodeMapping, Socket, TaskPart, Widget
from ..option_nodes import OPTION_NODES, OptionNode
from ..structure import Graph, Link
from .part import Part

_KINDS = {"integer": "INT", "number": "FLOAT", "boolean": "BOOLEAN", "string": "STRING"}


def _widget_type(path: str) -> str:
    field = schema.field(path)
    return "COMBO" if "enum" in field else _KINDS[field["type"]]


def _part(spec: OptionNode) -> Part:
    def evaluate(node, inputs, options: ConvertOptions) -> tuple:
        return (TaskPart(spec.fields_from_widgets(node.widgets)),)

    def build(task: dict, graph: Graph, options: ConvertOptions) -> Link | None:
        if not any(field in task for field in spec.task_fields):
            return None
        return graph.add(mapping, spec.widgets_from_task(task)), 0

    mapping = NodeMapping(
        class_type=spec.node_id, title=spec.title, column=1,
        inputs=tuple(Widget(w.name, _widget_type(w.path), w.default) for w in spec.widgets),
        outputs=(Socket(spec.input, spec.type),), evaluate=evaluate, task_fields=spec.task_fields, width=300)
    return Part(mapping, build)


PARTS = {spec.node_id: _part(spec) for spec in OPTION_NODES}
