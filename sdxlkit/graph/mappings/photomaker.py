"""SDXLKit_PhotoMaker: the task's photoMaker object; its photos from LoadImage nodes (several through ImageBatch)."""

from __future__ import annotations

from .. import photomaker_node
from ..images import task_image_ref
from ..mapping import ConvertOptions, NodeMapping, Socket, TaskPart, Widget, schema_default
from ..structure import Graph, Link
from .image_batch import build_images, expect_images
from .part import Part


def _evaluate(node, inputs, options: ConvertOptions) -> tuple:
    files = expect_images(inputs, "images", node)
    refs = [task_image_ref(f, options, f"photo {i + 1} of node {node.id} ({node.class_type})") for i, f in enumerate(files)]
    return (TaskPart({"photoMaker": photomaker_node.entry_from_widgets(node.widgets, refs)}),)


def build(task: dict, graph: Graph, options: ConvertOptions) -> Link | None:
    entry = task.get("photoMaker")
    if entry is None:
        return None
    images = build_images(entry["images"], "photoMaker.images", graph, options)
    return graph.add(MAPPING, photomaker_node.widgets_from_entry(entry), {"images": images}), 0


MAPPING = NodeMapping(
    class_type=photomaker_node.NODE_ID, title="SDXL PhotoMaker", column=1,
    inputs=(Socket("images", "IMAGE"), Widget("strength", "INT", schema_default("photoMaker.strength")),
            Widget("style", "COMBO", schema_default("photoMaker.style"))),
    outputs=(Socket("photomaker", photomaker_node.TYPE),),
    evaluate=_evaluate, task_fields=("photoMaker",),
)
PART = Part(MAPPING, build)
