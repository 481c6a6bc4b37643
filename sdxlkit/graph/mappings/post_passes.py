"""SDXLKit_HiresFix and SDXLKit_FaceDetailer: two parts of SDXL Inference (part.py), each a settings node holding
one task field (hiresFix, ultralytics) and feeding its own input of the Inference node."""

from __future__ import annotations

from .. import post_pass_nodes as nodes
from ..mapping import ConvertOptions, NodeMapping, Socket, TaskPart, Widget
from ..structure import Graph, Link
from .part import Part


def _hires(node, inputs, options: ConvertOptions) -> tuple:
    return (TaskPart({"hiresFix": nodes.hires_from_widgets(node.widgets)}),)


def _faces(node, inputs, options: ConvertOptions) -> tuple:
    return (TaskPart({"ultralytics": nodes.faces_from_widgets(node.widgets)}),)


def build_hires(task: dict, graph: Graph, options: ConvertOptions) -> Link | None:
    return (graph.add(HIRES_MAPPING, nodes.hires_widgets(task["hiresFix"])), 0) if "hiresFix" in task else None


def build_faces(task: dict, graph: Graph, options: ConvertOptions) -> Link | None:
    return (graph.add(FACES_MAPPING, nodes.faces_widgets(task["ultralytics"])), 0) if "ultralytics" in task else None


HIRES_MAPPING = NodeMapping(
    class_type=nodes.HIRES_NODE_ID, title="SDXL Hires Fix", column=1,
    inputs=(Widget("upscaler", "COMBO", nodes.HIRES_DEFAULTS_CHOICE), Widget("steps", "INT", nodes.TASK_STEPS),
            Widget("strength", "FLOAT", nodes.hires_widgets(True)["strength"])),
    outputs=(Socket("hires_fix", nodes.HIRES_TYPE),),
    evaluate=_hires, task_fields=("hiresFix",),
)
FACES_MAPPING = NodeMapping(
    class_type=nodes.FACES_NODE_ID, title="SDXL Face Detailer", column=1,
    inputs=(*(Widget(w, "FLOAT" if w in nodes.FACE_FLOATS else "INT", nodes.face_default(f))
              for w, f in nodes.FACE_NUMBERS.items()),
            *(Widget(w, "STRING", "", multiline=True) for w in nodes.FACE_PROMPTS)),
    outputs=(Socket("face_detailer", nodes.FACES_TYPE),),
    evaluate=_faces, task_fields=("ultralytics",),
)
HIRES_PART = Part(HIRES_MAPPING, build_hires)
FACES_PART = Part(FACES_MAPPING, build_faces)
