"""The intermediate graph that both ComfyUI formats (API prompt, UI workflow) are read into and written from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .mapping import GraphConversionError, NodeMapping

Link = tuple[str, int]  # (origin node id, origin output slot)


@dataclass
class Node:
    """widgets: every widget value by name (API-format values); links: socket input name -> origin; properties:
    extra data kept with the node (the Inference node's taskUUID); controls: UI-only control_after_generate values;
    band: which task's row the node is laid out in."""

    id: str
    class_type: str
    widgets: dict[str, Any] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    title: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    controls: dict[str, str] = field(default_factory=dict)
    band: int = 0


def id_key(node_id: str) -> tuple:
    """Node ids in numeric order where they are numbers (ComfyUI's own ids), then by text."""
    return (0, int(node_id), "") if str(node_id).isdigit() else (1, 0, str(node_id))


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    band: int = 0  # the band new nodes go into
    output_types: dict[str, tuple[str, ...]] = field(default_factory=dict)  # of the nodes added by `add`

    def sorted_nodes(self) -> list[Node]:
        return [self.nodes[k] for k in sorted(self.nodes, key=id_key)]

    def add(self, mapping: NodeMapping, widgets: dict, links: dict[str, Link | None] = (), *,
            properties: dict | None = None, controls: dict | None = None) -> str:
        """Add a node with ids 1, 2, 3... Widgets not given take their defaults; links must match socket types."""
        unknown = set(widgets) - {w.name for w in mapping.widgets}
        if unknown:
            raise GraphConversionError(f"{mapping.class_type} has no widget {', '.join(sorted(unknown))}")
        node = Node(str(len(self.nodes) + 1), mapping.class_type, title=mapping.title, band=self.band,
                    properties=dict(properties or {}), controls=dict(controls or {}))
        node.widgets = {w.name: widgets.get(w.name, w.default) for w in mapping.widgets}
        for name, link in dict(links).items():
            if link is None:
                continue
            socket = mapping.socket(name)
            origin_type = self.output_types[link[0]][link[1]]
            if socket is None or socket.type != origin_type:
                raise GraphConversionError(f"cannot link a {origin_type} output to input {name!r} of {mapping.class_type}")
            node.links[name] = link
        self.nodes[node.id] = node
        self.output_types[node.id] = tuple(o.type for o in mapping.outputs)
        return node.id
