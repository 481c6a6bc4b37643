"""SDXLKit_PhotoMaker: PhotoMaker V1 identity (1-4 face photos as an IMAGE batch), strength and style, feeding the
Inference node's `photomaker` input."""

from __future__ import annotations

from pathlib import Path

from ..sdxlkit.errors import ModelNotFound, SdxlKitError
from ..sdxlkit.graph import photomaker_node
from ..sdxlkit.graph.mapping import TaskPart
from ..sdxlkit.photomaker import DEFAULT_REFERENCE
from ..sdxlkit.runnable import photo_key
from ._api import io
from .input_checks import CheckedNode
from .model_names import ComfyModelNames
from .tensors import image_to_pil, png_data_uri
from .types import PhotoMaker
from .widgets import combo_widget, int_widget

FOLDER = "photomaker"
MAX_PHOTOS = 4


def photomaker_file() -> Path:
    """The file `photomaker-v1` names in models/photomaker (.safetensors before .bin, or what sdxlkit_models.json
    maps it to): the task names no PhotoMaker model."""
    try:
        return ComfyModelNames().resolve(DEFAULT_REFERENCE, FOLDER)
    except ModelNotFound:
        raise ModelNotFound(f"PhotoMaker needs {DEFAULT_REFERENCE}.safetensors or {DEFAULT_REFERENCE}.bin in "
                            f"models/{FOLDER} (TencentARC/PhotoMaker's photomaker-v1.bin; V2 is not supported)") from None


class SDXLKitPhotoMaker(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=photomaker_node.NODE_ID,
            display_name="SDXL PhotoMaker",
            category="sdxlkit",
            description="PhotoMaker V1 identity from 1-4 photos of one person (one clear face each; batch several "
                        "with Batch Images). Put the trigger word 'img' right after the class word in the prompt: "
                        "'a photo of a man img'. Uses models/photomaker/photomaker-v1.bin and its UNet LoRA.",
            inputs=[
                io.Image.Input("images", tooltip="1-4 face photos as an IMAGE batch"),
                int_widget("strength", "photoMaker.strength",
                           tooltip="style strength %: identity merging starts at step int(strength/100 x steps)"),
                combo_widget("style", "photoMaker.style", tooltip="PhotoMaker's style template for both prompts"),
            ],
            outputs=[PhotoMaker.Output(display_name="photomaker")],
        )

    @classmethod
    def execute(cls, images, **values) -> io.NodeOutput:
        if not 1 <= images.shape[0] <= MAX_PHOTOS:
            raise SdxlKitError(f"PhotoMaker takes 1..{MAX_PHOTOS} photos; the images batch holds {images.shape[0]}")
        photos = [image_to_pil(images, i) for i in range(images.shape[0])]
        entry = photomaker_node.entry_from_widgets(values, [png_data_uri(photo) for photo in photos])
        return io.NodeOutput(TaskPart({"photoMaker": entry}, images={photo_key(i): p for i, p in enumerate(photos)},
                                      files={(DEFAULT_REFERENCE, FOLDER): photomaker_file()}))
