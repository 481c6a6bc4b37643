"""Where nodes go in a UI workflow: left to right by their mapping's column (loaders and images, stacks, inference,
save), top to bottom in creation order within a column; each task's nodes in a row band below the previous one.
Nodes never overlap: the title bar the frontend draws above `pos` is counted in the gaps."""

from __future__ import annotations

from .mappings import MAPPINGS
from .structure import Graph

MARGIN = 50
COLUMN_GAP = 80
ROW_GAP = 70  # includes the frontend's 30 px title bar above each node
BAND_GAP = 120


def layout(graph: Graph) -> dict[str, tuple[list[float], list[float]]]:
    """node id -> (pos, size)."""
    sizes = {n.id: [MAPPINGS[n.class_type].width, MAPPINGS[n.class_type].height()] for n in graph.sorted_nodes()}
    columns = sorted({MAPPINGS[n.class_type].column for n in graph.nodes.values()})
    widths = {c: max(sizes[n.id][0] for n in graph.nodes.values() if MAPPINGS[n.class_type].column == c) for c in columns}
    x, lefts = MARGIN, {}
    for c in columns:
        lefts[c] = x
        x += widths[c] + COLUMN_GAP
    placed, top = {}, MARGIN
    for band in sorted({n.band for n in graph.nodes.values()}):
        bottoms = {}
        for node in (n for n in graph.sorted_nodes() if n.band == band):
            column = MAPPINGS[node.class_type].column
            y = bottoms.get(column, top)
            placed[node.id] = ([lefts[column], y], sizes[node.id])
            bottoms[column] = y + sizes[node.id][1] + ROW_GAP
        top = max(bottoms.values()) - ROW_GAP + BAND_GAP
    return placed
