"""The SDXL Inference nodes' widgets and how their values become imageInference task fields.

SDXLKit_ImageInference holds the core fields; strength, inpaint, outpaint, delivery and safety come from option
nodes wired into it (option_nodes.py), as `parts`. SDXLKit_Inference, the first release, is deprecated but still
loads and runs: its own widgets hold strength, only_masked/mask_margin and the outpaint sides (legacy_parts).

Kept in the engine because both the nodes and the graph <-> task conversion read it.
"""

from __future__ import annotations

NODE_ID = "SDXLKit_ImageInference"
LEGACY_NODE_ID = "SDXLKit_Inference"
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
                      parts: list[dict] = ()) -> dict:
    """Build the task a graph node describes. Images are references (data URIs) already encoded by the caller;
    `lora` and `control_net` are the entries of the stacks wired into the node, in chain order; `parts` the
    fields of the option nodes wired into it."""
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
    if lora:
        task["lora"] = list(lora)
    if control_net:
        task["controlNet"] = list(control_net)
    for fields in parts:
        task.update(fields)
    return task


def legacy_parts(values: dict, *, seed_image: bool, mask_image: bool) -> list[dict]:
    """The fields the deprecated node's own widgets hold: strength with a seed image; maskMargin when inpainting
    with only_masked; outpaint without a mask when a side is > 0 (sides of 0 are not written)."""
    if not seed_image:
        return []
    fields: dict = {"strength": values["strength"]}
    sides = {side: values[f"outpaint_{side}"] for side in OUTPAINT_SIDES if values[f"outpaint_{side}"] > 0}
    if mask_image:
        if values["only_masked"]:
            fields["maskMargin"] = values["mask_margin"]
    elif sides:
        fields["outpaint"] = sides | ({"blur": values["outpaint_blur"]} if values["outpaint_blur"] else {})
    return [fields]
