"""A graph -> its imageInference tasks: one per SDXL Inference node (SDXLKit_ImageInference, or the deprecated SDXLKit_Inference), in node id order.

The nodes feeding each Inference node are evaluated statically: each mapping turns its widget values and the
values of its inputs into its outputs' values (a model reference, an image file, a stack of entries...). A node
type without a mapping has no static value; it is an error only where its output is needed, and the message names
it. Output nodes (SDXLKit_Save) linked straight to an Inference node set their fields on its task; two that
disagree are an error.

taskUUID: kept from the Inference node (UI: node property, API: _meta, both "taskUUID"); a node without one, or
repeating the taskUUID of an earlier node (a copied node), gets a fresh uuid4. The fields the imported task set
or left out are restored from the node's "taskEdits" (explicit.py).
"""

from __future__ import annotations

from ..task.model import new_task_uuid, parse_tasks
from . import explicit
from .mapping import ConvertOptions, GraphConversionError, Upstream
from .mappings import MAPPINGS
from .structure import Graph, Node


class _Evaluator:
    def __init__(self, graph: Graph, options: ConvertOptions):
        self.graph, self.options = graph, options
        self.values: dict[str, tuple] = {}
        self.running: set[str] = set()

    def outputs(self, node_id: str) -> tuple | None:
        """The values of a node's outputs; None for a node type without a mapping."""
        node = self.graph.nodes[node_id]
        mapping = MAPPINGS.get(node.class_type)
        if mapping is None:
            return None
        if node_id not in self.values:
            if node_id in self.running:
                raise GraphConversionError(f"node {node_id} ({node.class_type}) is part of a cycle")
            self.running.add(node_id)
            self.values[node_id] = mapping.evaluate(node, self.inputs(node), self.options)
            self.running.discard(node_id)
        return self.values[node_id]

    def inputs(self, node: Node) -> dict[str, Upstream]:
        mapping = MAPPINGS[node.class_type]
        inputs = {}
        for name, (origin_id, slot) in node.links.items():
            socket = mapping.socket(name)
            origin = self.graph.nodes.get(origin_id)
            if socket is None:
                raise GraphConversionError(
                    f"input {name!r} of node {node.id} ({node.class_type}) is linked; only its widget value can be "
                    "written into a task")
            if origin is None:
                raise GraphConversionError(f"input {name!r} of node {node.id} is linked to node {origin_id}, which is not in the graph")
            origin_mapping = MAPPINGS.get(origin.class_type)
            if origin_mapping is not None and (slot >= len(origin_mapping.outputs)
                                               or origin_mapping.outputs[slot].type != socket.type):
                raise GraphConversionError(
                    f"input {name!r} ({socket.type}) of node {node.id} is linked to output {slot} of node "
                    f"{origin_id} ({origin.class_type}), which is not a {socket.type} output")
            values = self.outputs(origin_id)
            inputs[name] = Upstream(origin_id, origin.class_type, None if values is None else values[slot])
        missing = [w.name for w in mapping.widgets if w.name not in node.widgets and not w.optional]
        if missing:
            raise GraphConversionError(f"node {node.id} ({node.class_type}) has no value for {', '.join(missing)}")
        return inputs


def _sink_fields(graph: Graph, task_nodes: set[str]) -> dict[str, dict]:
    """Fields that output nodes set, by the Inference node they are linked to."""
    fields: dict[str, dict] = {}
    setters: dict[str, str] = {}
    for node in graph.sorted_nodes():
        mapping = MAPPINGS.get(node.class_type)
        if mapping is None or mapping.sink is None:
            continue
        for origin in sorted({origin for origin, _ in node.links.values() if origin in task_nodes}):
            values = mapping.sink(node)
            if origin in fields and fields[origin] != values:
                raise GraphConversionError(
                    f"nodes {setters[origin]} and {node.id} save the images of node {origin} with different settings "
                    f"({fields[origin]} and {values}); a task has one output format: make them agree or remove one")
            fields[origin], setters[origin] = values, node.id
    return fields


def tasks_from_graph(graph: Graph, options: ConvertOptions, *, as_written: bool = False) -> list[dict]:
    """The tasks of a graph, validated; an error if it holds no Inference node. as_written: as the widgets write
    them, before the node's taskEdits are undone, not validated (from_task.py compares them with the tasks)."""
    task_nodes = [n.id for n in graph.sorted_nodes() if getattr(MAPPINGS.get(n.class_type), "produces_task", False)]
    if not task_nodes:
        raise GraphConversionError("the graph has no SDXL Inference node, so it holds no task")
    evaluator = _Evaluator(graph, options)
    fields = _sink_fields(graph, set(task_nodes))
    tasks, seen = [], set()
    for node_id in task_nodes:
        task = dict(evaluator.outputs(node_id)[1].task)
        if task["taskUUID"] in seen:
            task["taskUUID"] = new_task_uuid()
        seen.add(task["taskUUID"])
        task |= fields.get(node_id, {})
        if not as_written:
            task = explicit.apply(task, graph.nodes[node_id].properties.get(explicit.PROPERTY))
        tasks.append(task)
    if not as_written:
        parse_tasks(tasks)
    return tasks
