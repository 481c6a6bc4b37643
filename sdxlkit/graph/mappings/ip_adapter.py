"""SDXLKit_IPAdapter: one task ipAdapters[] entry per node, its guide images from LoadImage nodes on the image,
image_2, ... inputs (in order; the node reads every image of an input's batch, so past four the last input takes
the rest through ImageBatch nodes, which resize each to the first one's size); chained like the LoRA stack (the
node without an upstream stack is the first entry).
A part of SDXL Inference (part.py): the chain's last node feeds its ip_adapter_stack input with a TaskPart holding
the whole ipAdapters list."""

from __future__ import annotations

from ...registry import IMAGE_ENCODERS
from .. import ip_adapter_node
from ..images import task_image_ref
from ..mapping import ConvertOptions, NodeMapping, Socket, TaskPart, Widget, expect, schema_default
from ..references import file_name_for, reference_for
from ..structure import Graph, Link
from .image_batch import build_images, expect_images
from .load_image import build_image
from .part import Part

INPUTS = ip_adapter_node.IMAGE_INPUTS


def _evaluate(node, inputs, options: ConvertOptions) -> tuple:
    upstream = expect(inputs, "ip_adapter_stack", node, TaskPart)
    entries = upstream.fields["ipAdapters"] if upstream is not None else []
    guides = []
    for name in INPUTS:
        if name == INPUTS[0] or inputs.get(name) is not None:
            guides += [task_image_ref(image, options, f"{name} of node {node.id} ({node.class_type})")
                       for image in expect_images(inputs, name, node)]
    model = reference_for(node.widgets["ipadapter_name"], "ipadapter", options)
    return (TaskPart({"ipAdapters": [*entries, ip_adapter_node.entry_from_widgets(node.widgets, model, guides)]}),)


def build_chain(task: dict, graph: Graph, options: ConvertOptions) -> Link | None:
    """The nodes (and guide image loaders) for a task's ipAdapters list; returns the last node's output."""
    link = None
    for i, entry in enumerate(task.get("ipAdapters", [])):
        images, field, last = entry["guideImages"], f"ipAdapters[{i}].guideImages", len(INPUTS) - 1
        links = {name: build_image(ref, f"{field}[{j}]", graph, options)
                 for j, (name, ref) in enumerate(zip(INPUTS[:last], images))}
        if len(images) > last:
            links[INPUTS[last]] = build_images(images[last:], field, graph, options, start=last)
        widgets = ip_adapter_node.widgets_from_entry(entry) | {
            "ipadapter_name": file_name_for(entry["model"], "ipadapter", options),
            "clip_vision_name": file_name_for(IMAGE_ENCODERS[entry["model"]], "clip_vision", options)}
        link = graph.add(MAPPING, widgets, links | {"ip_adapter_stack": link}), 0
    return link


MAPPING = NodeMapping(
    class_type=ip_adapter_node.NODE_ID, title="SDXL IP-Adapter", column=1,
    inputs=(Socket(INPUTS[0], "IMAGE"), *(Socket(name, "IMAGE", optional=True) for name in INPUTS[1:]),
            Widget("ipadapter_name", "COMBO", None), Widget("clip_vision_name", "COMBO", None),
            Widget("weight", "FLOAT", schema_default("ipAdapters[].weight")),
            Widget("weight_type", "COMBO", schema_default("ipAdapters[].weightType")),
            Widget("combine_method", "COMBO", schema_default("ipAdapters[].combineMethod")),
            Widget("embed_scaling", "COMBO", schema_default("ipAdapters[].embedScaling")),
            Widget("weight_composition", "FLOAT", ip_adapter_node.WEIGHT_COMPOSITION_DEFAULT),
            Socket("ip_adapter_stack", ip_adapter_node.STACK_TYPE, optional=True)),
    outputs=(Socket("ip_adapter_stack", ip_adapter_node.STACK_TYPE),),
    evaluate=_evaluate, task_fields=("ipAdapters",),
)
PART = Part(MAPPING, build_chain)
