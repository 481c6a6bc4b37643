"""SDXLKit_Inference: the node that is the task. Its widgets hold the core fields (see inference_node.py); its
inputs the model (Loader), the seed image and mask (load nodes) and the LoRA / ControlNet stacks.

task -> widgets, for what task_from_widgets reads back: a task without `seed` gets a random one (and the UI
control "randomize"; "fixed" keeps a given seed); without `strength` the engine's own default (1.0 for outpaint,
else the schema's 0.8); outpaint sides of 0 are not written back, and an outpaint with every side 0 is refused
(the node would read it as img2img).
"""

from __future__ import annotations

import secrets

from ...task.model import new_task_uuid
from .. import inference_node
from ..images import task_image_ref
from ..mapping import (ConvertOptions, GraphConversionError, ImageFile, ModelRefs, NodeMapping, Socket, Stack,
                       TaskOutput, Widget, expect, schema_default)
from ..structure import Graph
from . import controlnet, load_image, loader, lora, photomaker

UUID_PROPERTY = "taskUUID"  # node property (UI) / _meta key (API) keeping the task's taskUUID
SEED_BITS = 32


def _int(name: str, path: str, **kwargs) -> Widget:
    return Widget(name, "INT", schema_default(path), **kwargs)


WIDGETS = (
    Widget("positive_prompt", "STRING", "", multiline=True),
    Widget("negative_prompt", "STRING", "", multiline=True),
    _int("width", "width"), _int("height", "height"),
    Widget("seed", "INT", 0, control_after_generate=True),
    _int("steps", "steps"),
    Widget("scheduler", "COMBO", schema_default("scheduler")),
    Widget("cfg_scale", "FLOAT", schema_default("CFGScale")),
    _int("clip_skip", "clipSkip"),
    Widget("prompt_weighting", "COMBO", "none"),
    _int("number_results", "numberResults"),
    Widget("strength", "FLOAT", schema_default("strength")),
    Widget("only_masked", "BOOLEAN", False),
    _int("mask_margin", "maskMargin"),
    *(_int(f"outpaint_{side}", f"outpaint.{side}") for side in (*inference_node.OUTPAINT_SIDES, "blur")),
)


def _evaluate(node, inputs, options: ConvertOptions) -> tuple:
    model = expect(inputs, "model", node, ModelRefs, required=True)
    images = {}
    for name, field in (("seed_image", "inputs.seedImage"), ("mask_image", "inputs.maskImage")):
        image = expect(inputs, name, node, ImageFile)
        if image is not None:
            images[name] = task_image_ref(image, options, f"{field} of node {node.id} ({node.class_type})")
    lora_stack = expect(inputs, "lora_stack", node, Stack) or Stack()
    control_stack = expect(inputs, "control_stack", node, Stack) or Stack()
    photo_maker = expect(inputs, "photomaker", node, photomaker.PhotoMakerEntry)
    task = inference_node.task_from_widgets(
        node.widgets, model=model.model, vae=model.vae, seed_image=images.get("seed_image"),
        mask_image=images.get("mask_image"), task_uuid=node.properties.get(UUID_PROPERTY) or new_task_uuid(),
        lora=lora_stack.entries, control_net=control_stack.entries, photo_maker=photo_maker and photo_maker.entry)
    output = TaskOutput(node.id, task)
    return output, output


def widgets_from_task(task: dict) -> tuple[dict, dict]:
    """The widget values and UI control values that stand for a task."""
    values = {name: task[field] for name, field in inference_node.CORE_FIELDS.items() if field in task}
    values |= {name: task[field] for name, (field, _) in inference_node.OPTIONAL_FIELDS.items() if field in task}
    values["seed"] = task["seed"] if "seed" in task else secrets.randbits(SEED_BITS)
    outpaint = task.get("outpaint")
    if outpaint is not None:
        if not any(outpaint.get(side) for side in inference_node.OUTPAINT_SIDES):
            raise GraphConversionError("outpaint with every side 0 cannot be held by SDXLKit_Inference (it would "
                                       "run as img2img); remove outpaint or extend a side")
        values |= {f"outpaint_{key}": value for key, value in outpaint.items()}
    if "inputs" in task and "seedImage" in task["inputs"]:
        values["strength"] = task.get("strength", 1.0 if outpaint is not None else schema_default("strength"))
    if "maskMargin" in task:
        values |= {"only_masked": True, "mask_margin": task["maskMargin"]}
    return values, {"seed": "fixed" if "seed" in task else "randomize"}


def build(task: dict, graph: Graph, options: ConvertOptions) -> str:
    """The Inference node of a task with everything feeding it; returns its id."""
    inputs = task.get("inputs", {})
    links = {"model": loader.build(task, graph, options)}
    if "seedImage" in inputs:
        links["seed_image"] = load_image.build_image(inputs["seedImage"], "inputs.seedImage", graph, options)
    if "maskImage" in inputs:
        links["mask_image"] = load_image.build_mask(inputs["maskImage"], "inputs.maskImage", graph, options)
    links["lora_stack"] = lora.build_chain(task.get("lora", []), graph, options)
    links["control_stack"] = controlnet.build_chain(task.get("controlNet", []), graph, options)
    links["photomaker"] = photomaker.build(task.get("photoMaker"), graph, options)
    widgets, controls = widgets_from_task(task)
    return graph.add(MAPPING, widgets, links, properties={UUID_PROPERTY: task["taskUUID"]}, controls=controls)


MAPPING = NodeMapping(
    class_type=inference_node.NODE_ID, title="SDXL Inference", column=2,
    inputs=(Socket("model", "SDXLKIT_MODEL"), *WIDGETS,
            Socket("seed_image", "IMAGE", optional=True), Socket("mask_image", "MASK", optional=True),
            Socket("lora_stack", lora.MAPPING.outputs[0].type, optional=True),
            Socket("control_stack", controlnet.MAPPING.outputs[0].type, optional=True),
            Socket("photomaker", photomaker.MAPPING.outputs[0].type, optional=True)),
    outputs=(Socket("images", "IMAGE"), Socket("task", "STRING")),
    evaluate=_evaluate, produces_task=True, width=420,
    task_fields=("taskType", "taskUUID", "positivePrompt", "negativePrompt", "width", "height", "seed", "steps",
                 "scheduler", "CFGScale", "clipSkip", "promptWeighting", "numberResults", "strength", "maskMargin",
                 "outpaint", "inputs", "photoMaker"),
)
