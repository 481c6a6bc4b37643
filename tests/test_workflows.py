"""The example workflows: UI files the frontend's schema accepts, API exports with sound links, and both convert to
their task JSON twins (and are what converting the twin gives, so they never drift from it)."""

import json
from pathlib import Path

import jsonschema
import pytest

from graph_helpers import check_workflow
from sdxlkit.graph.convert import graph_to_tasks, tasks_to_api, tasks_to_workflow
from sdxlkit.graph.examples import example_options, placeholder_models
from sdxlkit.task.schema import vendor_schema

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"
NAMES = sorted(p.name.removesuffix(".task.json") for p in WORKFLOWS.glob("*.task.json"))
CORE_NODES = {"LoadImage", "LoadImageMask", "ImageBatch"}
IMAGE_FIELDS = (("inputs", "seedImage"), ("inputs", "maskImage"))


def load(name: str, kind: str) -> dict:
    return json.loads((WORKFLOWS / f"{name}{kind}").read_text())


def twin_with_file_paths(task: dict) -> dict:
    """The twin as graph -> task writes it with images="file": absolute paths of the files in workflows/assets."""
    task = json.loads(json.dumps(task))
    for outer, inner in IMAGE_FIELDS:
        if inner in task.get(outer, {}):
            task[outer][inner] = str((WORKFLOWS / task[outer][inner]).resolve())
    for entry in task.get("controlNet", []):
        entry["guideImage"] = str((WORKFLOWS / entry["guideImage"]).resolve())
    if "photoMaker" in task:
        task["photoMaker"]["images"] = [str((WORKFLOWS / ref).resolve()) for ref in task["photoMaker"]["images"]]
    return task


def test_every_capability_has_an_example():
    assert {"txt2img", "img2img", "inpaint", "outpaint", "lora_stack", "controlnet_balanced", "controlnet_prompt",
            "controlnet_controlnet", "photomaker_style"} <= set(NAMES)
    for name in NAMES:
        assert (WORKFLOWS / f"{name}.json").is_file() and (WORKFLOWS / f"{name}.api.json").is_file()


@pytest.mark.parametrize("name", NAMES)
def test_twin_is_valid_for_the_cloud_api_too(name):
    assert not list(jsonschema.Draft202012Validator(vendor_schema()).iter_errors(load(name, ".task.json")))


@pytest.mark.parametrize("name", NAMES)
def test_ui_workflow_matches_the_frontend_schema_and_uses_known_nodes(name):
    workflow = load(name, ".json")
    check_workflow(workflow)
    assert {n["type"] for n in workflow["nodes"]} <= CORE_NODES | {t for t in (n["type"] for n in workflow["nodes"]) if t.startswith("SDXLKit_")}
    images = [n["widgets_values"][0] for n in workflow["nodes"] if n["type"] in ("LoadImage", "LoadImageMask")]
    assert all((WORKFLOWS / "assets" / image).is_file() for image in images)


@pytest.mark.parametrize("name", NAMES)
def test_api_export_links_point_at_existing_outputs(name):
    prompt = load(name, ".api.json")
    outputs = {node_id: len(n["inputs"]) for node_id, n in prompt.items()}
    links = [v for n in prompt.values() for v in n["inputs"].values() if isinstance(v, list)]
    assert links and all(origin in outputs and isinstance(slot, int) and slot >= 0 for origin, slot in links)
    assert all(n["class_type"] in CORE_NODES or n["class_type"].startswith("SDXLKit_") for n in prompt.values())


@pytest.mark.parametrize("name", NAMES)
def test_workflow_and_api_export_convert_to_the_twin_and_back(name, tmp_path):
    twin = load(name, ".task.json")
    options = example_options(WORKFLOWS, placeholder_models(twin, tmp_path), images="file")
    assert tasks_to_workflow(twin, options) == load(name, ".json")
    assert tasks_to_api(twin, options) == load(name, ".api.json")
    expected = twin_with_file_paths(twin)
    assert graph_to_tasks(load(name, ".json"), options) == [expected]
    assert graph_to_tasks(load(name, ".api.json"), options) == [expected]
