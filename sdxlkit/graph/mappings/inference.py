"""The Inference nodes, which are the task. SDXLKit_ImageInference: core widgets (inference_node.py); inputs for
the model (Loader), the seed image and mask (load nodes), the LoRA / ControlNet stacks and the parts (PARTS:
option nodes, each feeding its own optional input). SDXLKit_Inference (deprecated): the same with strength,
inpaint and outpaint widgets of its own and no part inputs; conversion reads it and can still build it
(build_legacy), task -> graph builds the new node.

task -> widgets: a task without `seed` gets a random one (UI control "randomize"; "fixed" keeps a given seed).
"""

from __future__ import annotations

import secrets

from ...task.model import new_task_uuid
from .. import inference_node
from ..images import task_image_ref
from ..mapping import (ConvertOptions, GraphConversionError, ImageFile, ModelRefs, NodeMapping, Socket, Stack,
                       TaskOutput, TaskPart, Widget, expect, schema_default)
from ..structure import Graph
from . import controlnet, embeddings, ip_adapter, load_image, loader, lora, options, photomaker, post_passes, refiner

UUID_PROPERTY = "taskUUID"  # node property (UI) / _meta key (API) keeping the task's taskUUID
SEED_BITS = 32
# The parts, in input order. A new option node adds its Part here (see part.py); keep the order, saved UI
# workflows address inputs by name but older frontends by slot.
PARTS = (*(options.PARTS[node] for node in ("SDXLKit_Denoise", "SDXLKit_InpaintOptions", "SDXLKit_Outpaint",
                                              "SDXLKit_Delivery", "SDXLKit_Safety")),
         ip_adapter.PART, photomaker.PART, post_passes.HIRES_PART, post_passes.FACES_PART, refiner.PART, embeddings.PART,
         options.PARTS["SDXLKit_AcceleratorCache"])


def _int(name: str, path: str, **kwargs) -> Widget:
    return Widget(name, "INT", schema_default(path), **kwargs)


CORE_WIDGETS = (
    Widget("positive_prompt", "STRING", "", multiline=True),
    Widget("negative_prompt", "STRING", "", multiline=True),
    _int("width", "width"), _int("height", "height"),
    Widget("seed", "INT", 0, control_after_generate=True),
    _int("steps", "steps"),
    Widget("scheduler", "COMBO", schema_default("scheduler")),
    Widget("cfg_scale", "FLOAT", schema_default("CFGScale")),
    _int("clip_skip", "clipSkip"),
    Widget("prompt_weighting", "COMBO", "sdEmbeds"),  # new nodes parse (word:1.2), as ComfyUI users expect
    _int("number_results", "numberResults"),
)
LEGACY_WIDGETS = (
    *CORE_WIDGETS,
    Widget("strength", "FLOAT", schema_default("strength")),
    Widget("only_masked", "BOOLEAN", False),
    _int("mask_margin", "maskMargin"),
    *(_int(f"outpaint_{side}", f"outpaint.{side}") for side in (*inference_node.OUTPAINT_SIDES, "blur")),
)
IMAGE_SOCKETS = (Socket("seed_image", "IMAGE", optional=True), Socket("mask_image", "MASK", optional=True))
STACK_SOCKETS = (Socket("lora_stack", lora.MAPPING.outputs[0].type, optional=True),
                 Socket("control_stack", controlnet.MAPPING.outputs[0].type, optional=True))
CORE_TASK_FIELDS = ("taskType", "taskUUID", "positivePrompt", "negativePrompt", "width", "height", "seed", "steps",
                    "scheduler", "CFGScale", "clipSkip", "promptWeighting", "numberResults", "inputs")


def _task(node, inputs, options: ConvertOptions, parts) -> TaskOutput:
    model = expect(inputs, "model", node, ModelRefs, required=True)
    images = {}
    for name, field in (("seed_image", "inputs.seedImage"), ("mask_image", "inputs.maskImage")):
        image = expect(inputs, name, node, ImageFile)
        if image is not None:
            images[name] = task_image_ref(image, options, f"{field} of node {node.id} ({node.class_type})")
    lora_stack = expect(inputs, "lora_stack", node, Stack) or Stack()
    control_stack = expect(inputs, "control_stack", node, Stack) or Stack()
    task = inference_node.task_from_widgets(
        node.widgets, model=model.model, vae=model.vae, seed_image=images.get("seed_image"),
        mask_image=images.get("mask_image"), task_uuid=node.properties.get(UUID_PROPERTY) or new_task_uuid(),
        lora=lora_stack.entries, control_net=control_stack.entries, parts=parts(images))
    return TaskOutput(node.id, task)


def _evaluate(node, inputs, options: ConvertOptions) -> tuple:
    def parts(images):
        found = (expect(inputs, p.socket.name, node, TaskPart) for p in PARTS)
        return [part.fields for part in found if part is not None]

    output = _task(node, inputs, options, parts)
    return output, output


def _evaluate_legacy(node, inputs, options: ConvertOptions) -> tuple:
    def parts(images):
        return inference_node.legacy_parts(node.widgets, seed_image="seed_image" in images,
                                           mask_image="mask_image" in images)

    output = _task(node, inputs, options, parts)
    return output, output


def _core_widgets(task: dict) -> tuple[dict, dict]:
    values = {name: task[field] for name, field in inference_node.CORE_FIELDS.items() if field in task}
    # a field the task leaves out is the widget's "not set" value, whatever a new node's default is
    values |= {name: task.get(field, unset) for name, (field, unset) in inference_node.OPTIONAL_FIELDS.items()}
    values["seed"] = task["seed"] if "seed" in task else secrets.randbits(SEED_BITS)
    return values, {"seed": "fixed" if "seed" in task else "randomize"}


def _legacy_widgets(task: dict) -> tuple[dict, dict]:
    values, controls = _core_widgets(task)
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
    return values, controls


def _links(task: dict, graph: Graph, options: ConvertOptions) -> dict:
    inputs = task.get("inputs", {})
    links = {"model": loader.build(task, graph, options)}
    if "seedImage" in inputs:
        links["seed_image"] = load_image.build_image(inputs["seedImage"], "inputs.seedImage", graph, options)
    if "maskImage" in inputs:
        links["mask_image"] = load_image.build_mask(inputs["maskImage"], "inputs.maskImage", graph, options)
    links["lora_stack"] = lora.build_chain(task.get("lora", []), graph, options)
    links["control_stack"] = controlnet.build_chain(task.get("controlNet", []), graph, options)
    return links


def build(task: dict, graph: Graph, options: ConvertOptions) -> str:
    """The Inference node of a task with everything feeding it; returns its id."""
    links = _links(task, graph, options)
    for part in PARTS:
        links[part.socket.name] = part.build(task, graph, options)
    widgets, controls = _core_widgets(task)
    return graph.add(MAPPING, widgets, links, properties={UUID_PROPERTY: task["taskUUID"]}, controls=controls)


def build_legacy(task: dict, graph: Graph, options: ConvertOptions) -> str:
    """The deprecated node for a task (its fields other than the legacy widgets' must be the core ones)."""
    links = _links(task, graph, options)
    widgets, controls = _legacy_widgets(task)
    return graph.add(LEGACY_MAPPING, widgets, links, properties={UUID_PROPERTY: task["taskUUID"]}, controls=controls)


MAPPING = NodeMapping(
    class_type=inference_node.NODE_ID, title="SDXL Inference", column=2,
    inputs=(Socket("model", "SDXLKIT_MODEL"), *CORE_WIDGETS, *IMAGE_SOCKETS, *STACK_SOCKETS,
            *(p.socket for p in PARTS)),
    outputs=(Socket("images", "IMAGE"), Socket("task", "STRING")),
    evaluate=_evaluate, produces_task=True, width=400, task_fields=CORE_TASK_FIELDS,
)
LEGACY_MAPPING = NodeMapping(
    class_type=inference_node.LEGACY_NODE_ID, title="SDXL Inference (all widgets, deprecated)", column=2,
    inputs=(Socket("model", "SDXLKIT_MODEL"), *LEGACY_WIDGETS, *IMAGE_SOCKETS, *STACK_SOCKETS),
    outputs=(Socket("images", "IMAGE"), Socket("task", "STRING")),
    evaluate=_evaluate_legacy, produces_task=True, width=420,
    task_fields=(*CORE_TASK_FIELDS, "strength", "maskMargin", "outpaint"),
)
