"""SDXLKit_Refiner: the task's `refiner` (the refiner checkpoint and the hand-off step). A part of SDXL Inference
(part.py): it feeds the refiner input with a TaskPart holding the refiner object."""

from __future__ import annotations

from ...refiner.switch import DEFAULT_SWITCH_PERCENT
from .. import refiner_node
from ..mapping import ConvertOptions, NodeMapping, Socket, TaskPart, Widget
from ..references import file_name_for, reference_for
from ..structure import Graph, Link
from .part import Part


def _evaluate(node, inputs, options: ConvertOptions) -> tuple:
    model = reference_for(node.widgets["ckpt_name"], "checkpoints", options)
    return (TaskPart({"refiner": refiner_node.entry_from_widgets(node.widgets, model)}),)


def build(task: dict, graph: Graph, options: ConvertOptions) -> Link | None:
    if "refiner" not in task:
        return None
    entry = task["refiner"]
    widgets = refiner_node.widgets_from_entry(entry) | {"ckpt_name": file_name_for(entry["model"], "checkpoints", options)}
    return graph.add(MAPPING, widgets), 0


MAPPING = NodeMapping(
    class_type=refiner_node.NODE_ID, title="SDXL Refiner", column=1,
    inputs=(Widget("ckpt_name", "COMBO", None), Widget("start", "INT", DEFAULT_SWITCH_PERCENT),
            Widget("start_unit", "COMBO", "percent")),
    outputs=(Socket("refiner", refiner_node.SOCKET_TYPE),),
    evaluate=_evaluate, task_fields=("refiner",), width=340,
)
PART = Part(MAPPING, build)
