"""SDXLKit_Embeddings: one task embeddings[] entry per node, chained like the LoRA stack (the node without an
upstream stack is the first entry). A part of SDXL Inference (part.py): the chain's last node feeds its
embedding_stack input with a TaskPart holding the whole embeddings list."""

from __future__ import annotations

from .. import embeddings_node
from ..mapping import ConvertOptions, NodeMapping, Socket, TaskPart, Widget, expect, schema_default
from ..references import file_name_for, reference_for
from ..structure import Graph, Link
from .part import Part


def _evaluate(node, inputs, options: ConvertOptions) -> tuple:
    upstream = expect(inputs, "embedding_stack", node, TaskPart)
    entries = upstream.fields["embeddings"] if upstream is not None else []
    model = reference_for(node.widgets["embedding_name"], "embeddings", options)
    return (TaskPart({"embeddings": [*entries, embeddings_node.entry_from_widgets(node.widgets, model)]}),)


def build_chain(task: dict, graph: Graph, options: ConvertOptions) -> Link | None:
    """The nodes for a task's embeddings list; returns the last node's output."""
    link = None
    for entry in task.get("embeddings", []):
        widgets = embeddings_node.widgets_from_entry(entry) | {
            "embedding_name": file_name_for(entry["model"], "embeddings", options)}
        link = graph.add(MAPPING, widgets, {"embedding_stack": link}), 0
    return link


MAPPING = NodeMapping(
    class_type=embeddings_node.NODE_ID, title="SDXL Embeddings", column=1,
    inputs=(Widget("embedding_name", "COMBO", None), Widget("weight", "FLOAT", schema_default("embeddings[].weight")),
            Socket("embedding_stack", embeddings_node.STACK_TYPE, optional=True)),
    outputs=(Socket("embedding_stack", embeddings_node.STACK_TYPE),),
    evaluate=_evaluate, task_fields=("embeddings",),
)
PART = Part(MAPPING, build_chain)
