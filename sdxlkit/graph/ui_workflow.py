"""The ComfyUI frontend's workflow format, schema version 0.4 (ComfyUI_frontend workflowSchema.ts, zComfyWorkflow).

Written: last_node_id, last_link_id, nodes, links ([id, origin_id, origin_slot, target_id, target_slot, type]),
groups, config, extra, version. Each node lists its linkable inputs only (the frontend adds the widget inputs
from the node definition, by name, so link slots match both older and newer frontends), outputs with their links,
properties ("Node name for S&R", plus the Inference node's taskUUID) and widgets_values.

Read: the same format (link arrays or link objects). As the frontend does when it queues a graph: Reroute nodes
are followed, muted nodes (mode 2) are left out and bypassed ones (mode 4) pass their first input of the same type
through; a PrimitiveNode feeding a widget input is skipped (its value is in the widget's own value); nodes inside
subgraphs are read as the frontend flattens them (subgraphs.py). A workflow keeps the widget values of a subgraph's
nodes once per subgraph, not per instance (the frontend saves an instance's promoted widgets into the definition),
so when the frontend's API prompt of the same graph comes along, those nodes take their values from it.
"""

from __future__ import annotations

from .api_prompt import is_link
from .layout import layout, view
from .mapping import GraphConversionError
from .mappings import MAPPINGS
from .structure import Graph, Node, id_key
from .subgraphs import flatten_subgraphs, link_table

VERSION = 0.4
MUTED, BYPASSED = 2, 4
PASS_THROUGH = ("Reroute",)
VIRTUAL_SOURCES = ("PrimitiveNode",)


def _order(graph: Graph) -> dict[str, int]:
    """Execution order: each node after the nodes feeding it, ties by id."""
    order: dict[str, int] = {}
    while len(order) < len(graph.nodes):
        node = next((n for n in graph.sorted_nodes() if n.id not in order
                     and all(origin in order for origin, _ in n.links.values())), None)
        if node is None:
            raise GraphConversionError("the graph has a cycle")
        order[node.id] = len(order)
    return order


def workflow_from_graph(graph: Graph) -> dict:
    links, inputs, outputs = [], {}, {}
    for node in graph.sorted_nodes():
        outputs[node.id] = [{"name": o.name, "type": o.type, "links": [], "slot_index": i}
                            for i, o in enumerate(MAPPINGS[node.class_type].outputs)]
    for node in graph.sorted_nodes():
        inputs[node.id] = []
        for slot, socket in enumerate(MAPPINGS[node.class_type].sockets):
            link_id = None
            if socket.name in node.links:
                origin, origin_slot = node.links[socket.name]
                link_id = len(links) + 1
                links.append([link_id, int(origin), origin_slot, int(node.id), slot, socket.type])
                outputs[origin][origin_slot]["links"].append(link_id)
            inputs[node.id].append({"name": socket.name, "type": socket.type, "link": link_id})
    places, order = layout(graph), _order(graph)
    nodes = []
    for node in graph.sorted_nodes():
        mapping = MAPPINGS[node.class_type]
        pos, size = places[node.id]
        nodes.append({
            "id": int(node.id), "type": node.class_type, "pos": pos, "size": size, "flags": {},
            "order": order[node.id], "mode": 0, "inputs": inputs[node.id], "outputs": outputs[node.id],
            "properties": {"Node name for S&R": node.class_type, **node.properties},
            "widgets_values": mapping.widgets_values(node.widgets, node.controls),
            "title": node.title or mapping.title,
        })
    return {"last_node_id": max((n["id"] for n in nodes), default=0), "last_link_id": len(links),
            "nodes": nodes, "links": links, "groups": [], "config": {},
            "extra": {"ds": view(graph, places)}, "version": VERSION}


def _links_by_id(workflow: dict) -> dict[int, tuple[str, int]]:
    """link id -> (origin id, origin slot), from link arrays (0.4) or link objects (1)."""
    return {link_id: (str(link[0]), int(link[1])) for link_id, link in link_table(workflow).items()}


def _queued_widgets(prompt: dict | None, node: Node) -> dict:
    """The widget values the frontend queued for a node inside a subgraph (ids "<instance>:<inner>"), if known."""
    entry = (prompt or {}).get(node.id) if ":" in node.id else None
    if not isinstance(entry, dict) or entry.get("class_type") != node.class_type:
        return {}
    return {name: value for name, value in (entry.get("inputs") or {}).items()
            if name in node.widgets and not is_link(value)}


def graph_from_workflow(workflow: dict, prompt: dict | None = None) -> Graph:
    """The graph of a UI workflow; `prompt`: the API prompt the frontend made of the same graph, if at hand."""
    if not isinstance(workflow.get("nodes"), list):
        raise GraphConversionError("a UI workflow needs a nodes list")
    workflow = flatten_subgraphs(workflow)
    raw = {str(n["id"]): n for n in workflow["nodes"]}
    links = _links_by_id(workflow)

    def link(link_id) -> tuple:
        if link_id not in links:
            raise GraphConversionError(f"an input refers to link {link_id}, which is not in the workflow's links")
        return links[link_id]

    def source(link_id, want_type: str | None):
        """The (origin id, slot) a link really comes from, through reroutes and bypassed nodes; None if muted."""
        origin_id, slot = link(link_id)
        origin = raw.get(origin_id)
        if origin is None:
            raise GraphConversionError(f"link {link_id} comes from node {origin_id}, which is not in the workflow")
        if origin.get("mode") == MUTED:
            return None
        if origin.get("type") in PASS_THROUGH or origin.get("mode") == BYPASSED:
            for entry in origin.get("inputs") or []:
                if entry.get("link") is not None and (origin.get("type") in PASS_THROUGH or entry.get("type") == want_type):
                    return source(entry["link"], want_type)
            return None
        return origin_id, slot

    graph = Graph()
    for node_id in sorted(raw, key=id_key):
        entry = raw[node_id]
        if entry.get("type") in PASS_THROUGH or entry.get("mode") in (MUTED, BYPASSED):
            continue
        properties = {k: v for k, v in (entry.get("properties") or {}).items() if k != "Node name for S&R"}
        node = Node(node_id, entry.get("type", ""), title=entry.get("title"), properties=properties)
        mapping = MAPPINGS.get(node.class_type)
        if mapping is not None:
            node.widgets = mapping.widgets_from_values(entry.get("widgets_values") or [], node_id)
            node.widgets.update(_queued_widgets(prompt, node))
        for slot in entry.get("inputs") or []:
            if slot.get("link") is None:
                continue
            if slot.get("widget") and raw.get(link(slot["link"])[0], {}).get("type") in VIRTUAL_SOURCES:
                continue
            origin = source(slot["link"], slot.get("type"))
            if origin is not None:
                node.links[slot["name"]] = origin
        graph.nodes[node_id] = node
    return graph

