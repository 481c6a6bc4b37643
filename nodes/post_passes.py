"""SDXLKit_HiresFix and SDXLKit_FaceDetailer: the task's hiresFix and ultralytics settings, two parts of SDXL
Inference. Each passes on a TaskPart with its field and the model file it needs (the upscaler an id maps to, the
face detector), found through folder_paths like every model of the pack."""

from __future__ import annotations

from ..sdxlkit.graph import post_pass_nodes as nodes
from ..sdxlkit.graph.mapping import TaskPart
from ..sdxlkit.registry import FACE_DETECTOR
from ..sdxlkit.task.model import HIRES_DEFAULTS
from . import host
from ._api import io
from .input_checks import CheckedNode
from .model_names import ComfyModelNames
from .widgets import float_widget, int_widget

UPSCALERS = "upscale_models"


def _with_file(fields: dict, ref: str, kind: str) -> TaskPart:
    return TaskPart(fields, files={(ref, kind): ComfyModelNames().resolve(ref, kind)})


HIRES_MAX_STEPS = 10000  # hiresFix.steps has no maximum in the schema; ComfyUI's KSampler allows this many


class SDXLKitHiresFix(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=nodes.HIRES_NODE_ID,
            display_name="SDXL Hires Fix",
            category="sdxlkit",
            description="Generates at about 1 MP (half the sides for smaller images), upscales x4 with the upscaler "
                        "model (models/upscale_models), resizes to the Inference width x height and refines with an "
                        "img2img pass of exactly `steps` steps at `strength` (A1111/ComfyUI hires semantics).",
            inputs=[
                io.Combo.Input("upscaler", options=nodes.hires_upscalers(), default=nodes.HIRES_DEFAULTS_CHOICE,
                               tooltip="defaults = hiresFix: true (RealESRGAN_x4plus, the Inference steps, strength "
                                       "0.5); 504@1 RealESRGAN_x4plus.pth, realesrgan@anime-6b "
                                       "RealESRGAN_x4plus_anime_6B.pth, esrgan@animesharp 4x-AnimeSharp.pth, "
                                       "esrgan@ultrasharp 4x-UltraSharp.pth (or the same names as .safetensors)"),
                io.Int.Input("steps", default=nodes.TASK_STEPS, min=0, max=HIRES_MAX_STEPS,
                             tooltip="UNet steps of the refine pass; 0 = the Inference node's steps"),
                io.Float.Input("strength", default=HIRES_DEFAULTS["strength"], min=0.0, max=1.0, step=0.01,
                               round=0.01, tooltip="denoise of the refine pass; 0 = no refine (the upscaled image)"),
            ],
            outputs=[io.Custom(nodes.HIRES_TYPE).Output(display_name="hires_fix")],
        )

    @classmethod
    def execute(cls, **values) -> io.NodeOutput:
        fix = nodes.hires_from_widgets(values)
        model = fix["model"] if isinstance(fix, dict) else HIRES_DEFAULTS["model"]
        return io.NodeOutput(_with_file({"hiresFix": fix}, model, UPSCALERS))


class SDXLKitFaceDetailer(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        host.ensure_model_folder(FACE_DETECTOR[1])
        return io.Schema(
            node_id=nodes.FACES_NODE_ID,
            display_name="SDXL Face Detailer",
            category="sdxlkit",
            description="Impact Pack's FaceDetailer: detects faces with models/ultralytics/bbox/face_yolov8m.pt, "
                        "repaints each (box + mask_padding, 3x context, scaled to inpaint_size) and pastes it back "
                        "feathered by mask_blur, one after another with seed + face index. No face: the image is "
                        "unchanged.",
            inputs=[
                float_widget("confidence", "ultralytics.confidence"),
                int_widget("mask_padding", "ultralytics.maskPadding"),
                int_widget("mask_blur", "ultralytics.maskBlur"),
                int_widget("inpaint_size", "ultralytics.inpaintSize", min=64, max=2048, step=8,
                           tooltip="longer side of each face crop while it is repainted"),
                int_widget("steps", "ultralytics.steps"),
                float_widget("cfg_scale", "ultralytics.CFGScale", step=0.1),
                float_widget("strength", "ultralytics.strength"),
                io.String.Input("positive_prompt", multiline=True, default="", tooltip="empty: the Inference prompt"),
                io.String.Input("negative_prompt", multiline=True, default="",
                                tooltip="empty: the Inference negative prompt"),
            ],
            outputs=[io.Custom(nodes.FACES_TYPE).Output(display_name="face_detailer")],
        )

    @classmethod
    def execute(cls, **values) -> io.NodeOutput:
        return io.NodeOutput(_with_file({"ultralytics": nodes.faces_from_widgets(values)}, *FACE_DETECTOR))
