"""SDXLKit_LoraStack: one task lora[] entry per node; a chain A -> B -> C feeding Inference.lora_stack is [A, B, C]."""

from __future__ import annotations

from .. import lora_node
from ..mapping import ConvertOptions, NodeMapping, Socket, Stack, Widget, expect, schema_default
from ..references import file_name_for, reference_for
from ..structure import Graph, Link


def _evaluate(node, inputs, options: ConvertOptions) -> tuple:
    upstream = expect(inputs, "lora_stack", node, Stack) or Stack()
    entry = lora_node.entry_from_widgets(node.widgets, reference_for(node.widgets["lora_name"], "loras", options))
    return (Stack((*upstream.entries, entry)),)


def build_chain(entries: list[dict], graph: Graph, options: ConvertOptions) -> Link | None:
    """The nodes for a task's lora list; returns the output of the last one (None for no entries)."""
    link = None
    for entry in entries:
        widgets = lora_node.widgets_from_entry(entry) | {"lora_name": file_name_for(entry["model"], "loras", options)}
        link = graph.add(MAPPING, widgets, {"lora_stack": link}), 0
    return link


MAPPING = NodeMapping(
    class_type=lora_node.NODE_ID, title="SDXL LoRA Stack", column=1,
    inputs=(Widget("lora_name", "COMBO", None), Widget("weight", "FLOAT", schema_default("lora[].weight")),
            Widget("transformer", "COMBO", schema_default("lora[].transformer")),
            Socket("lora_stack", lora_node.STACK_TYPE, optional=True)),
    outputs=(Socket("lora_stack", lora_node.STACK_TYPE),),
    evaluate=_evaluate, task_fields=("lora",),
)
