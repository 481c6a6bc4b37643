"""SDXLKit_LoraStack and SDXLKit_ControlNet: chainable nodes, each adding one lora[] / controlNet[] entry."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..sdxlkit.controlnet import CONTROL_MODES
from ..sdxlkit.graph import controlnet_node, lora_node
from . import host
from ._api import io
from .input_checks import CheckedNode
from .model_names import ComfyModelNames
from .tensors import image_to_pil
from .types import ControlStack, LoraStack
from .widgets import combo_widget, float_widget


@dataclass(frozen=True)
class StackEntry:
    """One adapter as it flows along a stack link: its widget values, its file, how the task names the file, and
    (ControlNet) its guide image."""

    values: dict
    path: Path
    model_ref: str
    image: Image.Image | None = None


def _entry(kind: str, name: str, values: dict, image: Image.Image | None = None) -> StackEntry:
    path = host.full_path(kind, name)
    return StackEntry(values, path, ComfyModelNames().reference_for_path(path, name), image)


class SDXLKitLoraStack(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=lora_node.NODE_ID,
            display_name="SDXL LoRA Stack",
            category="sdxlkit",
            description="Adds one LoRA (kohya/A1111 or diffusers format; LyCORIS LoHa, LoKr and DoRA files too; UNet and both "
                        "text encoders) to the stack. "
                        "Chain several; weight 0 leaves the model as it is, negative weights push away from the LoRA.",
            inputs=[
                io.Combo.Input("lora_name", options=host.file_list("loras"), tooltip="a LoRA file from models/loras"),
                float_widget("weight", "lora[].weight"),
                combo_widget("transformer", "lora[].transformer",
                             tooltip="stage of two-stage video models; SDXL has one stage, so keep 'both'"),
                LoraStack.Input("lora_stack", optional=True),
            ],
            outputs=[LoraStack.Output(display_name="lora_stack")],
        )

    @classmethod
    def execute(cls, lora_name: str, lora_stack: list | None = None, **values) -> io.NodeOutput:
        return io.NodeOutput([*(lora_stack or []), _entry("loras", lora_name, values)])


class SDXLKitControlNet(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=controlnet_node.NODE_ID,
            display_name="SDXL ControlNet",
            category="sdxlkit",
            description="Adds one ControlNet with its guide image (already preprocessed: edges, depth, pose...) to the "
                        "stack; the image is resized to the generation size. Several are summed. Modes as in A1111: "
                        "balanced; prompt (my prompt is more important); controlnet (ControlNet is more important).",
            inputs=[
                io.Image.Input("image", tooltip="guide image; the first image of a batch is used"),
                io.Combo.Input("control_net_name", options=host.file_list("controlnet"),
                               tooltip="an SDXL ControlNet or Control-LoRA from models/controlnet (not Union)"),
                float_widget("weight", "controlNet[].weight"),
                io.Combo.Input("control_mode", options=list(CONTROL_MODES), default="balanced"),
                io.Int.Input("start", default=0, min=0, max=99, tooltip="first step with control: a step or a percent"),
                io.Combo.Input("start_unit", options=list(controlnet_node.UNITS), default="percent"),
                io.Int.Input("end", default=100, min=1, max=100, tooltip="control ends after this step / percent"),
                io.Combo.Input("end_unit", options=list(controlnet_node.UNITS), default="percent"),
                ControlStack.Input("control_stack", optional=True),
            ],
            outputs=[ControlStack.Output(display_name="control_stack")],
        )

    @classmethod
    def execute(cls, image, control_net_name: str, control_stack: list | None = None, **values) -> io.NodeOutput:
        return io.NodeOutput([*(control_stack or []), _entry("controlnet", control_net_name, values, image_to_pil(image))])
