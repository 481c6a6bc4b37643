"""The SDXLKit_Inference node's widgets and how their values become imageInference task fields.

Kept in the engine because both the node and the graph <-> task conversion read it.
"""

from __future__ import annotations

NODE_ID = "SDXLKit_Inference"
# widget id -> task field, always written
CORE_FIELDS = {
    "positive_prompt": "positivePrompt", "width": "width", "height": "height", "seed": "seed", "steps": "steps",
    "scheduler": "scheduler", "cfg_scale": "CFGScale",
}
# widget id -> (task field, the widget value meaning "not set")
OPTIONAL_FIELDS = {
    "negative_prompt": ("negativePrompt", ""),
    "clip_skip": ("clipSkip", 0),
    "prompt_weighting": ("promptWeighting", "none"),
    "number_results": ("numberResults", 1),
}
OUTPAINT_SIDES = ("top", "right", "bottom", "left")


def task_from_widgets(values: dict, *, model: str, vae: str | None, seed_image: str | None,
                      mask_image: str | None, task_uuid: str, lora: list[dict] = (), control_net: list[dict] = (),
                      photo_maker: dict | None = None) -> dict:
    """Build the task a graph node describes. Images are references (data URIs) already encoded by the caller;
    `lora` and `control_net` are the entries of the stacks wired into the node, in chain order; `photo_maker` the
    photoMaker object of the PhotoMaker node wired into it."""
    task: dict = {"taskType": "imageInference", "taskUUID": task_uuid, "model": model}
    if vae is not None:
        task["vae"] = vae
    for widget, name in CORE_FIELDS.items():
        task[name] = values[widget]
    for widget, (name, unset) in OPTIONAL_FIELDS.items():
        if values[widget] != unset:
            task[name] = values[widget]
    inputs = {k: v for k, v in (("seedImage", seed_image), ("maskImage", mask_image)) if v is not None}
    if inputs:
        task["inputs"] = inputs  # a mask without a seed image is left for validation to report
    if seed_image is not None:
        sides = {side: values[f"outpaint_{side}"] for side in OUTPAINT_SIDES if values[f"outpaint_{side}"] > 0}
        if mask_image is not None:
            if values["only_masked"]:
                task["maskMargin"] = values["mask_margin"]
        elif sides:
            task["outpaint"] = sides | ({"blur": values["outpaint_blur"]} if values["outpaint_blur"] else {})
        task["strength"] = values["strength"]
    if lora:
        task["lora"] = list(lora)
    if control_net:
        task["controlNet"] = list(control_net)
    if photo_maker is not None:
        task["photoMaker"] = photo_maker
    return task
