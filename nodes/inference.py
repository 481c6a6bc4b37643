"""SDXLKit_Inference: one imageInference task (txt2img, img2img, inpaint, outpaint) run on a loaded SDXL model."""

from __future__ import annotations

import io as _bytes_io
import uuid

import torch

from ..sdxlkit.errors import ModelNotFound
from ..sdxlkit.graph import controlnet_node, lora_node, photomaker_node
from ..sdxlkit.graph.inference_node import NODE_ID, task_from_widgets
from ..sdxlkit.images import data_uri
from ..sdxlkit.photomaker import DEFAULT_REFERENCE
from ..sdxlkit.runner import generate_task, guide_image_key, photo_key
from ..sdxlkit.task.model import parse_tasks
from . import host
from ._api import io
from .tensors import image_to_pil, mask_to_pil
from .types import ControlStack, LoraStack, PhotoMaker, SdxlModel
from .widgets import combo_widget, float_widget, int_widget


def _png_data_uri(image) -> str:
    buffer = _bytes_io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return data_uri(buffer.getvalue(), "PNG")


class SDXLKitInference(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE_ID,
            display_name="SDXL Inference",
            category="sdxlkit",
            description="Runs an imageInference task: txt2img, or img2img with a seed image, inpaint with a mask, "
                        "outpaint when any outpaint side is > 0. Outputs the images and the task JSON.",
            inputs=[
                SdxlModel.Input("model"),
                io.String.Input("positive_prompt", multiline=True, default="", tooltip="any length; 75-token chunks"),
                io.String.Input("negative_prompt", multiline=True, default="", tooltip="ignored when cfg_scale <= 1"),
                int_widget("width", "width"),
                int_widget("height", "height"),
                int_widget("seed", "seed", default=0, control_after_generate=True),
                int_widget("steps", "steps"),
                combo_widget("scheduler", "scheduler"),
                float_widget("cfg_scale", "CFGScale", step=0.1),
                int_widget("clip_skip", "clipSkip", tooltip="extra layers to skip; n = ComfyUI CLIPSetLastLayer -(n+2)"),
                io.Combo.Input("prompt_weighting", options=["none", "compel", "sdEmbeds"], default="none"),
                int_widget("number_results", "numberResults", tooltip="images use seed, seed+1, ..."),
                float_widget("strength", "strength", tooltip="img2img/inpaint denoise; use 1.0 for outpaint"),
                io.Boolean.Input("only_masked", default=False, tooltip="inpaint only the mask's area plus mask_margin, at full resolution"),
                int_widget("mask_margin", "maskMargin"),
                int_widget("outpaint_top", "outpaint.top"),
                int_widget("outpaint_right", "outpaint.right"),
                int_widget("outpaint_bottom", "outpaint.bottom"),
                int_widget("outpaint_left", "outpaint.left"),
                int_widget("outpaint_blur", "outpaint.blur"),
                io.Image.Input("seed_image", optional=True),
                io.Mask.Input("mask_image", optional=True),
                LoraStack.Input("lora_stack", optional=True),
                ControlStack.Input("control_stack", optional=True),
                PhotoMaker.Input("photomaker", optional=True),
            ],
            outputs=[io.Image.Output(display_name="images"), io.String.Output(display_name="task")],
            hidden=[io.Hidden.prompt, io.Hidden.unique_id],
        )

    @classmethod
    def _task_uuid(cls) -> str:
        """The taskUUID kept in the node's _meta by task -> graph conversion (a prompt from the task route), or a new one."""
        prompt, node_id = (cls.hidden.prompt, cls.hidden.unique_id) if cls.hidden is not None else (None, None)
        kept = ((prompt or {}).get(str(node_id)) or {}).get("_meta", {}).get("taskUUID")
        return kept if isinstance(kept, str) and kept else str(uuid.uuid4())

    @classmethod
    def execute(cls, model, seed_image=None, mask_image=None, lora_stack=None, control_stack=None, photomaker=None,
                **values) -> io.NodeOutput:
        images = {}
        if seed_image is not None:
            images["seedImage"] = image_to_pil(seed_image)
        if mask_image is not None:
            images["maskImage"] = mask_to_pil(mask_image)
        lora_stack, control_stack = lora_stack or [], control_stack or []
        for i, entry in enumerate(control_stack):
            images[guide_image_key(i)] = entry.image
        for i, photo in enumerate(photomaker.images if photomaker else []):
            images[photo_key(i)] = photo
        task_data = task_from_widgets(
            values, model=model.model_ref, vae=model.vae_ref, task_uuid=cls._task_uuid(),
            seed_image=_png_data_uri(images["seedImage"]) if "seedImage" in images else None,
            mask_image=_png_data_uri(images["maskImage"]) if "maskImage" in images else None,
            lora=[lora_node.entry_from_widgets(e.values, e.model_ref) for e in lora_stack],
            control_net=[controlnet_node.entry_from_widgets(e.values, e.model_ref, _png_data_uri(e.image))
                         for e in control_stack],
            photo_maker=photomaker and photomaker_node.entry_from_widgets(
                photomaker.values, [_png_data_uri(photo) for photo in photomaker.images]),
        )
        task = parse_tasks(task_data)[0]
        files = {(e.model_ref, kind): e.path for kind, stack in (("loras", lora_stack), ("controlnet", control_stack))
                 for e in stack}
        if photomaker is not None:
            files[DEFAULT_REFERENCE, "photomaker"] = photomaker.path

        def resolve(ref: str, kind: str):
            if (ref, kind) not in files:
                raise ModelNotFound(f"{kind} model {ref!r} is not wired into this node")
            return files[ref, kind]

        outputs = generate_task(model.components, task, images, resolve, host.progress_callback())
        images = torch.cat([image for image, _ in outputs]).permute(0, 2, 3, 1).contiguous()
        return io.NodeOutput(images, task.to_json())
