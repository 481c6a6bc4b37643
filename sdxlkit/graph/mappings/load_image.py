"""ComfyUI's core LoadImage (seed and guide images) and LoadImageMask (masks): files of the input folder."""

from __future__ import annotations

from ..images import MASK_CHANNEL, graph_image
from ..mapping import ConvertOptions, GraphConversionError, ImageFile, NodeMapping, Socket, Widget
from ..structure import Graph, Link

CHANNELS = ("alpha", "red", "green", "blue")
# node property: {"image": file name, "ref": the task's reference} or {"image": file name, "dataURI": true} for a
# task that had the file's PNG data URI (images.py)
TASK_IMAGE = "taskImage"
UPLOAD = Widget("upload", "IMAGEUPLOAD", "image", ui_only=True)  # the upload button's value in widgets_values


def _kept(node) -> dict:
    """ImageFile fields for the imported task's reference, while the node still reads the file it was imported as."""
    kept = node.properties.get(TASK_IMAGE)
    if not isinstance(kept, dict) or kept.get("image") != node.widgets["image"]:
        return {}
    if kept.get("dataURI") is True:
        return {"data_uri": True}
    return {"task_ref": kept["ref"]} if isinstance(kept.get("ref"), str) else {}


def _image(node, inputs, options) -> tuple:
    name = node.widgets["image"]
    return ImageFile(name, **_kept(node)), ImageFile(name, "alpha", require_alpha=True)


def _mask(node, inputs, options) -> tuple:
    channel = node.widgets["channel"]
    if channel not in CHANNELS:
        raise GraphConversionError(f"node {node.id} (LoadImageMask): channel must be one of {', '.join(CHANNELS)}")
    return (ImageFile(node.widgets["image"], channel, **_kept(node)),)


def _add(mapping: NodeMapping, ref: str, widgets: dict, keep: bool, graph: Graph) -> Link:
    kept = {"image": widgets["image"]} | ({"ref": ref} if keep else {"dataURI": True})
    return graph.add(mapping, widgets, properties={TASK_IMAGE: kept}), 0


def build_image(ref: str, field: str, graph: Graph, options: ConvertOptions) -> Link:
    name, keep = graph_image(ref, field, options)
    return _add(IMAGE_MAPPING, ref, {"image": name}, keep, graph)


def build_mask(ref: str, field: str, graph: Graph, options: ConvertOptions) -> Link:
    name, keep = graph_image(ref, field, options, mask=True)
    return _add(MASK_MAPPING, ref, {"image": name, "channel": MASK_CHANNEL}, keep, graph)


IMAGE_MAPPING = NodeMapping(
    class_type="LoadImage", title="Load Image", column=0,
    inputs=(Widget("image", "COMBO", None), UPLOAD),
    outputs=(Socket("IMAGE", "IMAGE"), Socket("MASK", "MASK")),
    evaluate=_image, width=315, min_height=314,
)
MASK_MAPPING = NodeMapping(
    class_type="LoadImageMask", title="Load Image (as Mask)", column=0,
    inputs=(Widget("image", "COMBO", None), Widget("channel", "COMBO", "alpha"), UPLOAD),
    outputs=(Socket("MASK", "MASK"),),
    evaluate=_mask, width=315, min_height=318,
)
