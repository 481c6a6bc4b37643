"""SDXLKit_ControlNet: one task controlNet[] entry per node, its guide image from a LoadImage node; chained like
the LoRA stack (the node without an upstream stack is the first entry)."""

from __future__ import annotations

from .. import controlnet_node
from ..images import task_image_ref
from ..mapping import ConvertOptions, ImageFile, NodeMapping, Socket, Stack, Widget, expect, schema_default
from ..references import file_name_for, reference_for
from ..structure import Graph, Link
from .load_image import build_image


def _evaluate(node, inputs, options: ConvertOptions) -> tuple:
    upstream = expect(inputs, "control_stack", node, Stack) or Stack()
    image = expect(inputs, "image", node, ImageFile, required=True)
    guide = task_image_ref(image, options, f"guide image of node {node.id} ({node.class_type})")
    model = reference_for(node.widgets["control_net_name"], "controlnet", options)
    return (Stack((*upstream.entries, controlnet_node.entry_from_widgets(node.widgets, model, guide))),)


def build_chain(entries: list[dict], graph: Graph, options: ConvertOptions) -> Link | None:
    """The nodes (and guide image loaders) for a task's controlNet list; returns the last node's output."""
    link = None
    for i, entry in enumerate(entries):
        image = build_image(entry["guideImage"], f"controlNet[{i}].guideImage", graph, options)
        widgets = controlnet_node.widgets_from_entry(entry) | {
            "control_net_name": file_name_for(entry["model"], "controlnet", options)}
        link = graph.add(MAPPING, widgets, {"image": image, "control_stack": link}), 0
    return link


MAPPING = NodeMapping(
    class_type=controlnet_node.NODE_ID, title="SDXL ControlNet", column=1,
    inputs=(Socket("image", "IMAGE"), Widget("control_net_name", "COMBO", None),
            Widget("weight", "FLOAT", schema_default("controlNet[].weight")),
            Widget("control_mode", "COMBO", schema_default("controlNet[].controlMode")),
            Widget("start", "INT", controlnet_node.FULL_RANGE["start"]), Widget("start_unit", "COMBO", "percent"),
            Widget("end", "INT", controlnet_node.FULL_RANGE["end"]), Widget("end_unit", "COMBO", "percent"),
            Socket("control_stack", controlnet_node.STACK_TYPE, optional=True)),
    outputs=(Socket("control_stack", controlnet_node.STACK_TYPE),),
    evaluate=_evaluate, task_fields=("controlNet",),
)
