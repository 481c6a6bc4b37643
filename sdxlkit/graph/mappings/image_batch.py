"""ComfyUI's core ImageBatch (image1 + image2 -> one IMAGE batch): several photos for one input, e.g. PhotoMaker's.
ImageBatch resizes image2 to image1's size (bilinear, center crop) when they differ; the task keeps each photo as
it is, so photos of different sizes are not pixel-identical between the two (PhotoMaker crops and resizes every
photo to 224 px anyway)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..mapping import ConvertOptions, GraphConversionError, ImageFile, NodeMapping, Socket, Upstream
from ..structure import Graph, Link
from .load_image import build_image


@dataclass(frozen=True)
class ImageFiles:
    SOURCES: ClassVar[str] = "LoadImage nodes, batched by ImageBatch nodes"
    files: tuple[ImageFile, ...]


def _files(upstream: Upstream | None, name: str, node) -> tuple[ImageFile, ...]:
    if upstream is None:
        raise GraphConversionError(f"input {name!r} of node {node.id} ({node.class_type}) is not connected")
    value = upstream.value
    if isinstance(value, ImageFile) and value.channel is None:
        return (value,)
    if isinstance(value, ImageFiles):
        return value.files
    raise GraphConversionError(
        f"input {name!r} of node {node.id} ({node.class_type}) is fed by node {upstream.node_id} "
        f"({upstream.class_type}), whose output cannot be written into a task statically; it must come from "
        f"{ImageFiles.SOURCES}")


def expect_images(inputs: dict[str, Upstream], name: str, node) -> tuple[ImageFile, ...]:
    """The image files of a (required) IMAGE input fed by a LoadImage or a chain of ImageBatch nodes, in order."""
    return _files(inputs.get(name), name, node)


def _evaluate(node, inputs, options: ConvertOptions) -> tuple:
    return (ImageFiles(expect_images(inputs, "image1", node) + expect_images(inputs, "image2", node)),)


def build_images(refs: list[str], field: str, graph: Graph, options: ConvertOptions, start: int = 0) -> Link:
    """One LoadImage per image, batched left to right by ImageBatch nodes; returns the batch's link. `start`: the
    index of refs[0] in the task's list `field`."""
    link = build_image(refs[0], f"{field}[{start}]", graph, options)
    for i, ref in enumerate(refs[1:], start=start + 1):
        link = graph.add(MAPPING, {}, {"image1": link, "image2": build_image(ref, f"{field}[{i}]", graph, options)}), 0
    return link


MAPPING = NodeMapping(
    class_type="ImageBatch", title="Batch Images", column=0,
    inputs=(Socket("image1", "IMAGE"), Socket("image2", "IMAGE")),
    outputs=(Socket("IMAGE", "IMAGE"),),
    evaluate=_evaluate, width=210,
)
