"""A part: a node feeding one optional input of the SDXL Inference node with a TaskPart (its task fields).

The Inference node's input is named and typed by the part mapping's only output. Adding a part = its mapping
module (a NodeMapping whose evaluate returns (TaskPart(fields),), and a build(task, graph, options) that adds the
node for a task holding its fields, returning its output link or None) plus one entry in mappings/inference.py
PARTS; the ComfyUI node's input follows from that entry (nodes/inference.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..mapping import NodeMapping, Socket


@dataclass(frozen=True)
class Part:
    mapping: NodeMapping
    build: Callable  # (task, graph, options) -> Link | None

    @property
    def socket(self) -> Socket:
        output = self.mapping.outputs[0]
        return Socket(output.name, output.type, optional=True)
