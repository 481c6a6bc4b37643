"""The SDXLKit_HiresFix and SDXLKit_FaceDetailer nodes' widgets and the task fields they stand for (hiresFix,
ultralytics). Each node is a part of SDXLKit_ImageInference, feeding its hires_fix / face_detailer input.

A graph built from scratch writes a widget at its default nowhere (the field's default is the same), so the node
at its defaults is `ultralytics: {}`. HiresFix: upscaler "defaults" is `hiresFix: true` (its steps and strength
widgets are not used then); steps 0 = the task's steps. FaceDetailer: an empty prompt = the task's prompt.
A task's own spelling (an explicit default, `upscaleFactor`) comes back through the Inference node's taskEdits.
"""

from __future__ import annotations

from ..task import schema
from ..task.model import HIRES_DEFAULTS, LOCAL_DEFAULTS

HIRES_NODE_ID = "SDXLKit_HiresFix"
HIRES_TYPE = "SDXLKIT_HIRES_FIX"
FACES_NODE_ID = "SDXLKit_FaceDetailer"
FACES_TYPE = "SDXLKIT_FACE_DETAILER"

HIRES_DEFAULTS_CHOICE = "defaults"
TASK_STEPS = 0


def hires_upscalers() -> list[str]:
    return [HIRES_DEFAULTS_CHOICE, *schema.field("hiresFix")["oneOf"][1]["properties"]["model"]["enum"]]


def hires_from_widgets(values: dict):
    if values["upscaler"] == HIRES_DEFAULTS_CHOICE:
        return True
    fix = {"model": values["upscaler"]}
    if values["steps"] != TASK_STEPS:
        fix["steps"] = values["steps"]
    if values["strength"] != HIRES_DEFAULTS["strength"]:
        fix["strength"] = values["strength"]
    return fix


def hires_widgets(fix) -> dict:
    fix = fix if isinstance(fix, dict) else {}
    return {"upscaler": fix.get("model", HIRES_DEFAULTS_CHOICE), "steps": fix.get("steps", TASK_STEPS),
            "strength": fix.get("strength", HIRES_DEFAULTS["strength"])}


# widget id -> ultralytics field; numbers are written when they differ from the default
FACE_NUMBERS = {"confidence": "confidence", "mask_padding": "maskPadding", "mask_blur": "maskBlur",
                "inpaint_size": "inpaintSize", "steps": "steps", "cfg_scale": "CFGScale", "strength": "strength"}
FACE_FLOATS = ("confidence", "cfg_scale", "strength")
FACE_PROMPTS = {"positive_prompt": "positivePrompt", "negative_prompt": "negativePrompt"}


def face_default(field: str):
    path = f"ultralytics.{field}"
    value = schema.default(path)
    return LOCAL_DEFAULTS[path] if value is None else value


def faces_from_widgets(values: dict) -> dict:
    fields = {field: values[w] for w, field in FACE_NUMBERS.items() if values[w] != face_default(field)}
    return fields | {field: values[w] for w, field in FACE_PROMPTS.items() if values[w]}


def faces_widgets(settings: dict) -> dict:
    return ({w: settings.get(field, face_default(field)) for w, field in FACE_NUMBERS.items()}
            | {w: settings.get(field, "") for w, field in FACE_PROMPTS.items()})
