"""Where nodes go in a UI workflow: left to right by their mapping's column (loaders and images, stacks and option
nodes, inference), top to bottom in creation order within a column; the Save node below the Inference node, so a
task is about 1300 px wide and fits the screen at 100 %. Each task's nodes in a row band below the previous one.
Nodes are widened to show their widget values whole (a long model name). Nodes never overlap: the title bar the
frontend draws above `pos` is counted in the gaps."""

from __future__ import annotations

import math

from .mapping import Widget
from .mappings import MAPPINGS
from .structure import Graph, Node

MARGIN = 50
COLUMN_GAP = 80
ROW_GAP = 70  # includes the frontend's 30 px title bar above each node
BAND_GAP = 120
CHAR_WIDTH = 7  # the frontend's widget font, per character
WIDGET_PADDING = 70  # widget margins, arrows and the gap between label and value
MAX_WIDTH = 640
VIEW_WIDTH = 1300  # canvas width of a 1400 px window beside the frontend's sidebar
READABLE_SCALE = 0.65  # below 0.6 the frontend draws nodes without text


def _column(node: Node) -> int:
    """Output-only nodes (Save) share the column of the node feeding them, below it."""
    mapping = MAPPINGS[node.class_type]
    return mapping.column - 1 if mapping.sink is not None else mapping.column


def node_width(node: Node) -> int:
    mapping = MAPPINGS[node.class_type]
    texts = [len(w.name) + len(str(node.widgets.get(w.name, ""))) for w in mapping.inputs
             if isinstance(w, Widget) and not w.multiline and not w.ui_only]
    needed = WIDGET_PADDING + CHAR_WIDTH * max(texts, default=0)
    return min(MAX_WIDTH, max(mapping.width, needed))


def layout(graph: Graph) -> dict[str, tuple[list[float], list[float]]]:
    """node id -> (pos, size)."""
    sizes = {n.id: [node_width(n), MAPPINGS[n.class_type].height()] for n in graph.sorted_nodes()}
    columns = sorted({_column(n) for n in graph.nodes.values()})
    widths = {c: max(sizes[n.id][0] for n in graph.nodes.values() if _column(n) == c) for c in columns}
    x, lefts = MARGIN, {}
    for c in columns:
        lefts[c] = x
        x += widths[c] + COLUMN_GAP
    placed, top = {}, MARGIN
    for band in sorted({n.band for n in graph.nodes.values()}):
        bottoms = {}
        for node in (n for n in graph.sorted_nodes() if n.band == band):
            column = _column(node)
            y = bottoms.get(column, top)
            placed[node.id] = ([lefts[column], y], sizes[node.id])
            bottoms[column] = y + sizes[node.id][1] + ROW_GAP
        top = max(bottoms.values()) - ROW_GAP + BAND_GAP
    return placed


def view_scale(places: dict[str, tuple[list[float], list[float]]]) -> float:
    """The zoom that shows a band's full width in VIEW_WIDTH, never below READABLE_SCALE nor above 1 (the bands
    below are reached by scrolling, each as readable as the first)."""
    right = max((pos[0] + size[0] for pos, size in places.values()), default=0) + MARGIN
    return max(READABLE_SCALE, min(1.0, math.floor(100 * VIEW_WIDTH / right) / 100)) if right else 1.0
