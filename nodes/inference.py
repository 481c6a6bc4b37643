"""SDXL Inference: one imageInference task (txt2img, img2img, inpaint, outpaint) run on a loaded SDXL model.

SDXLKit_ImageInference holds the core widgets; option nodes and the parts of later features feed its optional
inputs, one per mappings.inference.PARTS entry. SDXLKit_Inference, the first release with every widget on the
node, is deprecated (hidden from search) and keeps loading and running saved workflows.
"""

from __future__ import annotations

import logging
import uuid

import torch

from ..sdxlkit.errors import ModelNotFound
from ..sdxlkit.graph import controlnet_node, inference_node, lora_node
from ..sdxlkit.graph.mapping import TaskPart
from ..sdxlkit.graph.mappings.inference import PARTS
from ..sdxlkit.runner import generate_task, guide_image_key
from ..sdxlkit.safety import checker_for, nsfw_flags
from ..sdxlkit.task.model import parse_tasks
from . import host
from ._api import io
from .input_checks import CheckedNode
from .prompt_meta import kept_task_uuid
from .tensors import image_to_pil, mask_to_pil, png_data_uri
from .types import ControlStack, LoraStack, SdxlModel
from .widgets import combo_widget, float_widget, int_widget

PART_INPUTS = [p.socket.name for p in PARTS]
LEGACY_WIDGETS = ("strength", "only_masked", "mask_margin",
                  *(f"outpaint_{side}" for side in (*inference_node.OUTPAINT_SIDES, "blur")))


def _core_inputs() -> list:
    return [
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
        io.Combo.Input("prompt_weighting", options=["none", "compel", "sdEmbeds"], default="sdEmbeds",
                       tooltip="sdEmbeds: A1111 syntax, (word:1.2), (word) = x1.1, [word] = /1.1, BREAK; "
                               "the weight multiplies the word's embedding (ComfyUI's CLIPTextEncode "
                               "instead moves it away from the empty prompt's). compel: word+, "
                               "(words)1.3, .blend(). none: brackets are literal text"),
        int_widget("number_results", "numberResults", tooltip="images use seed, seed+1, ..."),
    ]


def _linked_inputs() -> list:
    return [io.Image.Input("seed_image", optional=True, tooltip="img2img / inpaint / outpaint source"),
            io.Mask.Input("mask_image", optional=True, tooltip="inpaint: white = repaint"),
            LoraStack.Input("lora_stack", optional=True), ControlStack.Input("control_stack", optional=True)]


def _schema(node_id: str, display_name: str, description: str, inputs: list, **extra) -> io.Schema:
    """Both inference nodes: the images and the task JSON out, the prompt's _meta read through the hidden inputs."""
    return io.Schema(node_id=node_id, display_name=display_name, description=description, inputs=inputs,
                     outputs=[io.Image.Output(display_name="images"), io.String.Output(display_name="task")],
                     hidden=[io.Hidden.prompt, io.Hidden.unique_id], **extra)


class SDXLKitImageInference(CheckedNode):
    WIDGET_FIELDS = {"positive_prompt": "positivePrompt"}

    @classmethod
    def define_schema(cls) -> io.Schema:
        return _schema(
            inference_node.NODE_ID, "SDXL Inference",
            "Runs an imageInference task: txt2img, or img2img with a seed image, inpaint with a mask, outpaint with "
            "SDXL Outpaint wired in. Option nodes (sdxlkit/options) add strength, inpaint, outpaint, delivery and "
            "safety fields. Outputs the images and the task JSON.",
            [*_core_inputs(), *_linked_inputs(), *(io.Custom(p.socket.type).Input(p.socket.name, optional=True) for p in PARTS)],
            category="sdxlkit")

    @classmethod
    def _task_uuid(cls) -> str:
        """The taskUUID kept in the node's _meta by task -> graph conversion (a prompt from the task route), or a new one."""
        prompt, node_id = (cls.hidden.prompt, cls.hidden.unique_id) if cls.hidden is not None else (None, None)
        return kept_task_uuid(prompt, node_id) or str(uuid.uuid4())

    @classmethod
    def _parts(cls, values: dict, has_seed: bool, has_mask: bool) -> list:
        return [part for name in PART_INPUTS if (part := values.pop(name, None)) is not None]

    @classmethod
    def execute(cls, model, seed_image=None, mask_image=None, lora_stack=None, control_stack=None,
                **values) -> io.NodeOutput:
        parts = cls._parts(values, seed_image is not None, mask_image is not None)
        images = {}
        if seed_image is not None:
            images["seedImage"] = image_to_pil(seed_image)
        if mask_image is not None:
            images["maskImage"] = mask_to_pil(mask_image)
        lora_stack, control_stack = lora_stack or [], control_stack or []
        for i, entry in enumerate(control_stack):
            images[guide_image_key(i)] = entry.image
        task_data = inference_node.task_from_widgets(
            values, model=model.model_ref, vae=model.vae_ref, task_uuid=cls._task_uuid(),
            seed_image=png_data_uri(images["seedImage"]) if "seedImage" in images else None,
            mask_image=png_data_uri(images["maskImage"]) if "maskImage" in images else None,
            lora=[lora_node.entry_from_widgets(e.values, e.model_ref) for e in lora_stack],
            control_net=[controlnet_node.entry_from_widgets(e.values, e.model_ref, png_data_uri(e.image))
                         for e in control_stack],
            parts=[p.fields for p in parts],
        )
        task = parse_tasks(task_data)[0]  # what runs, every value explicit (the seed of each image included)
        files = {(e.model_ref, kind): e.path for kind, stack in (("loras", lora_stack), ("controlnet", control_stack))
                 for e in stack}
        for part in parts:
            images |= part.images
            files |= part.files

        def resolve(ref: str, kind: str):
            if (ref, kind) not in files:
                raise ModelNotFound(f"{kind} model {ref!r} is not wired into this node")
            return files[ref, kind]

        checker = checker_for(task.data, host.models_root())  # without the model: refused before the run
        outputs = generate_task(model.components, task, images, resolve, host.progress_callback())
        cls._report_content(task, checker, outputs)
        images = torch.cat([image for image, _ in outputs]).permute(0, 2, 3, 1).contiguous()
        return io.NodeOutput(images, task.to_json())


    @staticmethod
    def _report_content(task, checker, outputs) -> None:
        """A graph has no result objects: the safety check's NSFWContent is logged (the task route's results carry it)."""
        from ..sdxlkit.generate import to_pil

        flags = nsfw_flags(checker, [to_pil(image)[0] for image, _ in outputs], host.torch_device())
        for (_, seed), flag in zip(outputs, flags):
            if flag is not None:
                logging.log(logging.WARNING if flag else logging.INFO, "sdxlkit: task %s, seed %d: NSFWContent %s",
                            task.uuid, seed, str(flag).lower())


class SDXLKitInference(SDXLKitImageInference):
    """The first release: every option on the node itself. Deprecated: old workflows load and run unchanged."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return _schema(
            inference_node.LEGACY_NODE_ID, "SDXL Inference (all widgets, deprecated)",
            "Deprecated: use SDXL Inference with option nodes. Runs an imageInference task with strength, inpaint and "
            "outpaint widgets on the node; outpaint when any outpaint side is > 0.",
            [*_core_inputs(),
             float_widget("strength", "strength", tooltip="img2img/inpaint denoise; use 1.0 for outpaint"),
             io.Boolean.Input("only_masked", default=False, tooltip="inpaint only the mask's area plus mask_margin, at full resolution"),
             int_widget("mask_margin", "maskMargin"),
             *(int_widget(f"outpaint_{side}", f"outpaint.{side}") for side in (*inference_node.OUTPAINT_SIDES, "blur")),
             *_linked_inputs()],
            category="sdxlkit/deprecated", is_deprecated=True)

    @classmethod
    def _parts(cls, values: dict, has_seed: bool, has_mask: bool) -> list:
        legacy = {name: values.pop(name) for name in LEGACY_WIDGETS}
        return [TaskPart(fields) for fields in inference_node.legacy_parts(legacy, seed_image=has_seed,
                                                                          mask_image=has_mask)]
