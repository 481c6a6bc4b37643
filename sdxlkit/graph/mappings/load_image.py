"""ComfyUI's core LoadImage (seed and guide images) and LoadImageMask (masks): files of the input folder."""

from __future__ import annotations

from ..images import MASK_CHANNEL, graph_image_name
from ..mapping import ConvertOptions, GraphConversionError, ImageFile, NodeMapping, Socket, Widget
from ..structure import Graph, Link

CHANNELS = ("alpha", "red", "green", "blue")
UPLOAD = Widget("upload", "IMAGEUPLOAD", "image", ui_only=True)  # the upload button's value in widgets_values


def _image(node, inputs, options) -> tuple:
    name = node.widgets["image"]
    return ImageFile(name), ImageFile(name, "alpha", require_alpha=True)


def _mask(node, inputs, options) -> tuple:
    channel = node.widgets["channel"]
    if channel not in CHANNELS:
        raise GraphConversionError(f"node {node.id} (LoadImageMask): channel must be one of {', '.join(CHANNELS)}")
    return (ImageFile(node.widgets["image"], channel),)


def build_image(ref: str, field: str, graph: Graph, options: ConvertOptions) -> Link:
    return graph.add(IMAGE_MAPPING, {"image": graph_image_name(ref, field, options)}), 0


def build_mask(ref: str, field: str, graph: Graph, options: ConvertOptions) -> Link:
    name = graph_image_name(ref, field, options, mask=True)
    return graph.add(MASK_MAPPING, {"image": name, "channel": MASK_CHANNEL}), 0


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
