"""Where nodes go in a UI workflow: left to right by their mapping's column (loaders and images, stacks and option
nodes, inference, save), top to bottom in creation order within a column; each task's nodes in a row band below
the previous one. Nodes are widened to show their widget values whole (a long model name). Nodes never overlap:
the title bar the frontend draws above `pos` is counted in the gaps. The workflow opens at the zoom that shows the
first band whole in a 1400 x 900 window, below the frontend's tab bar (view)."""

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
VIEW_WIDTH, VIEW_HEIGHT = 1320, 740  # the canvas of a 1400 x 900 window not covered by the frontend's bars
VIEW_TOP = 80  # screen pixels the frontend's menu and tab bars cover
READABLE_SCALE = 0.65  # below 0.6 the frontend draws nodes without text
TITLE_BAR = 30


def node_width(node: Node) -> int:
    mapping = MAPPINGS[node.class_type]
    texts = [len(w.name) + len(str(node.widgets.get(w.name, ""))) for w in mapping.inputs
             if isinstance(w, Widget) and not w.multiline and not w.ui_only]
    needed = WIDGET_PADDING + CHAR_WIDTH * max(texts, default=0)
    return min(MAX_WIDTH, max(mapping.width, needed))


def layout(graph: Graph) -> dict[str, tuple[list[float], list[float]]]:
    """node id -> (pos, size)."""
    sizes = {n.id: [node_width(n), MAPPINGS[n.class_type].height()] for n in graph.sorted_nodes()}
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


def view(graph: Graph, places: dict[str, tuple[list[float], list[float]]]) -> dict:
    """The frontend's saved view (extra.ds): the zoom that shows the first band's width and height, never below
    READABLE_SCALE nor above 1 (the bands below are reached by scrolling, each as readable as the first), and an
    offset that puts it below the tab bar."""
    first = [places[n.id] for n in graph.nodes.values() if n.band == min(m.band for m in graph.nodes.values())]
    right = max((pos[0] + size[0] for pos, size in first), default=0) + MARGIN
    bottom = max((pos[1] + size[1] for pos, size in first), default=0) + MARGIN - TITLE_BAR
    scale = min(1.0, VIEW_WIDTH / right, VIEW_HEIGHT / bottom) if first else 1.0
    scale = max(READABLE_SCALE, math.floor(100 * scale) / 100)
    return {"scale": scale, "offset": [0, round(VIEW_TOP / scale - (MARGIN - TITLE_BAR))]}
