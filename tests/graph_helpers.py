"""Helpers of the graph conversion tests: tiny images, the documented round-trip policy written out independently
of the code, and the structural checks every generated UI workflow must pass."""

from __future__ import annotations

import base64
import copy
import io

import numpy as np
from PIL import Image

from sdxlkit.images import load_image, to_mask, to_rgb

# Required fields of zComfyWorkflow (0.4) and zComfyNode in ComfyUI_frontend's workflowSchema.ts.
WORKFLOW_REQUIRED = {"last_node_id", "last_link_id", "nodes", "links", "version"}
NODE_REQUIRED = {"id", "type", "pos", "size", "flags", "order", "mode", "properties"}
TITLE_BAR = 30  # the frontend draws the title above `pos`


def make_image(size=(16, 12), mode="RGB", seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    array = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(array[..., 0] if channels == 1 else array, mode)


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def data_uri(image: Image.Image, fmt: str = "PNG") -> str:
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(encode(image, fmt)).decode()


def pixels(ref: str, mask: bool, base_dir=None) -> tuple:
    """What the engine reads from an image reference."""
    image = load_image(ref, "test", base_dir=base_dir)
    image = to_mask(image) if mask else to_rgb(image)
    return image.mode, image.size, image.tobytes()


def with_pixels(task: dict, base_dir=None) -> dict:
    """The task with every image reference replaced by the pixels the engine reads."""
    task = copy.deepcopy(task)
    for name, ref in task.get("inputs", {}).items():
        task["inputs"][name] = pixels(ref, name == "maskImage", base_dir)
    for entry in task.get("controlNet", []):
        entry["guideImage"] = pixels(entry["guideImage"], False, base_dir)
    if "photoMaker" in task:
        task["photoMaker"]["images"] = [pixels(ref, False, base_dir) for ref in task["photoMaker"]["images"]]
    return task


def expected_after_round_trip(task: dict, result: dict) -> dict:
    """The documented policy: what a task becomes after task -> graph -> task (`result` supplies a drawn seed)."""
    t = copy.deepcopy(task)
    for name in ("outputType", "includeCost", "deliveryMethod", "safety"):
        t.pop(name, None)
    t.setdefault("steps", 30)
    t.setdefault("scheduler", "Default")
    t.setdefault("CFGScale", 7.0)
    t.setdefault("seed", result["seed"])
    for name, unset in (("clipSkip", 0), ("numberResults", 1), ("outputFormat", "JPG"), ("outputQuality", 95)):
        if t.get(name) == unset:
            del t[name]
    if "seedImage" in t.get("inputs", {}):
        t.setdefault("strength", 1.0 if "outpaint" in t else 0.8)
    if "outpaint" in t:
        t["outpaint"] = {k: v for k, v in t["outpaint"].items() if v}
    for name in ("lora", "controlNet"):
        if t.get(name) == []:
            del t[name]
    for entry in t.get("lora", []):
        entry.setdefault("weight", 1)
        if entry.get("transformer") == "both":
            del entry["transformer"]
    for entry in t.get("embeddings", []):
        entry.setdefault("weight", 1)
    if t.get("refiner", {}).get("startStepPercentage") == 80:  # the engine's default hand-off
        del t["refiner"]["startStepPercentage"]
    for entry in t.get("controlNet", []):
        entry.setdefault("weight", 1)
        for key, unset in (("controlMode", "balanced"), ("startStepPercentage", 0), ("endStepPercentage", 100)):
            if entry.get(key) == unset:
                del entry[key]
    for key, unset in (("strength", 15), ("style", "No style")):
        if t.get("photoMaker", {}).get(key) == unset:
            del t["photoMaker"][key]
    return t


def check_workflow(workflow: dict) -> None:
    """Schema field set, link integrity and types, ids, and a layout without overlaps."""
    assert WORKFLOW_REQUIRED <= set(workflow) and workflow["version"] == 0.4
    assert isinstance(workflow["groups"], list) and isinstance(workflow["config"], dict) and isinstance(workflow["extra"], dict)
    nodes = {n["id"]: n for n in workflow["nodes"]}
    assert len(nodes) == len(workflow["nodes"]) and workflow["last_node_id"] == max(nodes)
    for node in nodes.values():
        assert NODE_REQUIRED <= set(node), node["type"]
        assert node["properties"]["Node name for S&R"] == node["type"]
        assert len(node["pos"]) == 2 and len(node["size"]) == 2 and node["mode"] == 0
        assert all({"name", "type", "link"} <= set(i) for i in node["inputs"])
        assert all({"name", "type", "links", "slot_index"} <= set(o) for o in node["outputs"])
    link_ids = [link[0] for link in workflow["links"]]
    assert len(set(link_ids)) == len(link_ids) and workflow["last_link_id"] == max(link_ids, default=0)
    for link_id, origin, origin_slot, target, target_slot, kind in workflow["links"]:
        output = nodes[origin]["outputs"][origin_slot]
        target_input = nodes[target]["inputs"][target_slot]
        assert output["type"] == kind == target_input["type"]
        assert link_id in output["links"] and target_input["link"] == link_id
        assert nodes[origin]["order"] < nodes[target]["order"]
        a, b = nodes[origin]["pos"], nodes[target]["pos"]
        assert a[0] < b[0] or (a[0] == b[0] and a[1] < b[1]), "links run left to right, or down a column (stacks)"
    for node in nodes.values():
        for slot in node["inputs"]:
            assert slot["link"] is None or slot["link"] in link_ids
    boxes = [(n["pos"][0], n["pos"][1] - TITLE_BAR, n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1])
             for n in nodes.values()]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], "nodes overlap"
