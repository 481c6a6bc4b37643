"""UI workflows with subgraphs (frontend 1.24+: `definitions.subgraphs`, a node whose type is a subgraph's id)
flattened into one graph, as the frontend does when it queues: the nodes inside get ids "<instance id>:<inner id>"
(nested: "5:3:2"), and links through the subgraph's input (-10) and output (-20) nodes are joined to what feeds
or reads the instance outside. A muted instance mutes its nodes; a bypassed one is refused (unpack it first)."""

from __future__ import annotations

from itertools import count

from .mapping import GraphConversionError

INPUT_NODE, OUTPUT_NODE = -10, -20
MUTED, BYPASSED = 2, 4


def link_table(graph: dict) -> dict:
    """link id -> (origin id, origin slot, target id, target slot, type), from arrays (0.4) or objects (1)."""
    out = {}
    for link in graph.get("links") or []:
        if link is None:  # a hole some saved workflows have
            continue
        if isinstance(link, dict):
            link = [link.get(k) for k in ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")]
        out[link[0]] = tuple(link[1:6])
    return out


class _Context:
    def __init__(self, graph: dict, prefix: str, parent: _Context | None, instance: dict | None, mode: int):
        self.graph, self.prefix, self.parent, self.instance, self.mode = graph, prefix, parent, instance, mode
        self.links = link_table(graph)
        self.nodes = {n["id"]: n for n in graph.get("nodes") or []}


def _instance_input(ctx: _Context, slot: int) -> dict:
    """The instance's input for its subgraph's input `slot`, found by name as the frontend does: the workflow that
    graphToPrompt returns lists only linked widget inputs, so positions shift."""
    declared = ctx.graph.get("inputs") or []
    entries = ctx.instance.get("inputs") or []
    name = declared[slot].get("name") if slot < len(declared) else None
    if name is None:
        return entries[slot] if slot < len(entries) else {}
    return next((entry for entry in entries if entry.get("name") == name), {})


def flatten_subgraphs(workflow: dict) -> dict:
    """The workflow itself when no node is a subgraph, else an equivalent workflow without subgraphs."""
    definitions = {s["id"]: s for s in (workflow.get("definitions") or {}).get("subgraphs") or []}
    if not any(n.get("type") in definitions for n in workflow.get("nodes") or []):
        return workflow
    nodes, links, link_ids = [], [], count(1)

    def source(ctx: _Context, origin, slot: int, depth: int = 0):
        """The flat (node id, slot) a link really comes from; None where nothing feeds it."""
        if depth > 64:
            raise GraphConversionError("subgraphs nest too deep (or contain themselves)")
        if origin == INPUT_NODE:
            entry = _instance_input(ctx, slot)
            if entry.get("link") is None:
                return None
            outer = ctx.parent.links[entry["link"]]
            return source(ctx.parent, outer[0], outer[1], depth + 1)
        node = ctx.nodes.get(origin)
        if node is not None and node.get("type") in definitions:
            child = _child(ctx, node)
            inner = next((link for link in child.links.values() if link[2] == OUTPUT_NODE and link[3] == slot), None)
            return None if inner is None else source(child, inner[0], inner[1], depth + 1)
        return f"{ctx.prefix}{origin}", slot

    def _child(ctx: _Context, node: dict) -> _Context:
        if node.get("mode") == BYPASSED:
            raise GraphConversionError(f"subgraph node {ctx.prefix}{node['id']} is bypassed; unpack it (right-click > "
                                       "Unpack Subgraph) or un-bypass it to convert the graph")
        mode = node.get("mode") if node.get("mode") == MUTED else ctx.mode
        return _Context(definitions[node["type"]], f"{ctx.prefix}{node['id']}:", ctx, node, mode)

    def walk(ctx: _Context, depth: int = 0) -> None:
        if depth > 16:
            raise GraphConversionError("subgraphs nest too deep (or contain themselves)")
        for node in ctx.graph.get("nodes") or []:
            if node.get("type") in definitions:
                walk(_child(ctx, node), depth + 1)
                continue
            flat = dict(node, id=f"{ctx.prefix}{node['id']}", inputs=[])
            if ctx.mode == MUTED:
                flat["mode"] = MUTED
            for target_slot, entry in enumerate(node.get("inputs") or []):
                entry = dict(entry)
                if entry.get("link") is not None:
                    link = ctx.links[entry["link"]]
                    origin = source(ctx, link[0], link[1])
                    entry["link"] = None
                    if origin is not None:
                        entry["link"] = next(link_ids)
                        links.append([entry["link"], origin[0], origin[1], flat["id"], target_slot, link[4]])
                flat["inputs"].append(entry)
            nodes.append(flat)

    walk(_Context(workflow, "", None, None, 0))
    return {k: v for k, v in workflow.items() if k != "definitions"} | {"nodes": nodes, "links": links}
