"""SDXLKit_Save: the task's outputFormat and outputQuality (written back only when not the defaults, JPG / 95).
filename_prefix is not a task field ("sdxlkit" when built from a task)."""

from __future__ import annotations

from ..mapping import ConvertOptions, NodeMapping, Socket, Widget, schema_default
from ..structure import Graph

FIELDS = {"output_format": "outputFormat", "output_quality": "outputQuality"}  # widget -> task field


def _evaluate(node, inputs, options: ConvertOptions) -> tuple:
    return ()


def _sink(node) -> dict:
    """The task fields this node sets on the task(s) feeding it."""
    return {field: node.widgets[widget] for widget, field in FIELDS.items()
            if node.widgets[widget] != schema_default(field)}


def build(task: dict, graph: Graph, options: ConvertOptions, inference: str) -> str:
    widgets = {widget: task[field] for widget, field in FIELDS.items() if field in task}
    return graph.add(MAPPING, widgets, {"images": (inference, 0), "task": (inference, 1)})


MAPPING = NodeMapping(
    class_type="SDXLKit_Save", title="SDXL Save (with task)", column=3,
    inputs=(Socket("images", "IMAGE"), Widget("filename_prefix", "STRING", "sdxlkit"),
            Widget("output_format", "COMBO", schema_default("outputFormat")),
            Widget("output_quality", "INT", schema_default("outputQuality")),
            Socket("task", "STRING", optional=True)),
    outputs=(), evaluate=_evaluate, sink=_sink, task_fields=tuple(FIELDS.values()), width=320,
)
