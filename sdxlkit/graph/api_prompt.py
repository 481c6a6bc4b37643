"""The ComfyUI API format: {"<id>": {"class_type", "inputs": {widget values, links as [id, slot]}, "_meta": {"title"}}}.

Node properties (the Inference node's taskUUID) travel in `_meta`, which ComfyUI does not read.
"""

from __future__ import annotations

from .mapping import GraphConversionError, Socket
from .mappings import MAPPINGS
from .structure import Graph, Node


def api_from_graph(graph: Graph) -> dict:
    prompt = {}
    for node in graph.sorted_nodes():
        inputs = {}
        for item in MAPPINGS[node.class_type].inputs:
            if isinstance(item, Socket):
                if item.name in node.links:
                    origin, slot = node.links[item.name]
                    inputs[item.name] = [origin, slot]
            elif not item.ui_only:
                inputs[item.name] = node.widgets[item.name]
        prompt[node.id] = {"inputs": inputs, "class_type": node.class_type,
                           "_meta": {"title": node.title or node.class_type, **node.properties}}
    return prompt


def is_link(value) -> bool:
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and not isinstance(value[0], bool) and isinstance(value[1], int) and not isinstance(value[1], bool))


def graph_from_api(prompt: dict) -> Graph:
    graph = Graph()
    for node_id, entry in prompt.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("class_type"), str):
            raise GraphConversionError(f"API prompt node {node_id!r} has no class_type")
        meta = entry.get("_meta") or {}
        node = Node(str(node_id), entry["class_type"], title=meta.get("title"),
                    properties={k: v for k, v in meta.items() if k != "title"})
        for name, value in (entry.get("inputs") or {}).items():
            if is_link(value):
                node.links[name] = (str(value[0]), value[1])
            else:
                node.widgets[name] = value
        graph.nodes[node.id] = node
    return graph
