"""The shipped examples: UI workflows the frontend's schema accepts (the only files the template browser lists,
each with a thumbnail), API prompts with sound links, and task twins that import as shipped (images inlined);
each workflow and prompt converts to its twin exactly and is what converting the twin gives."""

import json
from pathlib import Path

import jsonschema
import pytest
from graph_helpers import check_workflow
from PIL import Image

from sdxlkit.graph.convert import graph_to_tasks, tasks_to_api, tasks_to_workflow
from sdxlkit.graph.examples import API, EXAMPLES, INPUT, TASKS, WORKFLOWS, example_options, placeholder_models
from sdxlkit.runnable import image_references
from sdxlkit.task.model import parse_tasks
from sdxlkit.task.schema import vendor_schema

ROOT = Path(__file__).resolve().parent.parent
NAMES = sorted(EXAMPLES)
CORE_NODES = {"LoadImage", "LoadImageMask", "ImageBatch"}
# ComfyUI's custom_node_manager lists <pack>/<folder>/*.json for each of these folders as templates
TEMPLATE_FOLDERS = ("example_workflows", "example", "examples", "workflow", "workflows")


def twin(name: str) -> dict:
    return json.loads((ROOT / TASKS / f"{name}.task.json").read_text())


def workflow(name: str) -> dict:
    return json.loads((ROOT / WORKFLOWS / f"{EXAMPLES[name]}.json").read_text())


def api(name: str) -> dict:
    return json.loads((ROOT / API / f"{name}.api.json").read_text())


def test_every_capability_has_an_example_and_the_browser_lists_only_ui_workflows():
    assert {"txt2img", "img2img", "inpaint", "outpaint", "lora_stack", "controlnet_balanced", "controlnet_prompt",
            "controlnet_controlnet", "ipadapter_style_transfer", "ipadapter_two_images",
            "photomaker_style"} <= set(NAMES)
    assert sorted(p.name.removesuffix(".task.json") for p in (ROOT / TASKS).glob("*.task.json")) == NAMES
    listed = sorted(p.name for folder in TEMPLATE_FOLDERS for p in (ROOT / folder).glob("*.json"))
    assert listed == sorted(f"{title}.json" for title in EXAMPLES.values())
    titles = [EXAMPLES[n] for n in EXAMPLES]
    assert titles == sorted(titles, key=lambda t: int(t.split()[1]))  # numbered in reading order


@pytest.mark.parametrize("name", NAMES)
def test_each_template_has_a_thumbnail(name):
    with Image.open(ROOT / WORKFLOWS / f"{EXAMPLES[name]}.jpg") as image:
        assert image.format == "JPEG" and image.size == (512, 512)
        assert len(image.convert("L").getcolors(256) or ()) > 8  # drawn, not blank


@pytest.mark.parametrize("name", NAMES)
def test_twin_is_self_contained_and_valid_for_the_cloud_api_too(name):
    task = twin(name)
    assert not list(jsonschema.Draft202012Validator(vendor_schema()).iter_errors(task))
    images = [ref for _, ref in image_references(parse_tasks(task)[0])]
    assert all(ref.startswith("data:image/png;base64,") for ref in images)


@pytest.mark.parametrize("name", NAMES)
def test_ui_workflow_matches_the_frontend_schema_and_uses_known_nodes(name):
    document = workflow(name)
    check_workflow(document)
    assert all(n["type"] in CORE_NODES or n["type"].startswith("SDXLKit_") for n in document["nodes"])
    assert "SDXLKit_Inference" not in {n["type"] for n in document["nodes"]}  # the deprecated node
    images = [n["widgets_values"][0] for n in document["nodes"] if n["type"] in ("LoadImage", "LoadImageMask")]
    assert all((ROOT / INPUT / image).is_file() for image in images)


@pytest.mark.parametrize("name", NAMES)
def test_api_export_links_point_at_existing_outputs(name):
    prompt = api(name)
    outputs = {node_id: len(n["inputs"]) for node_id, n in prompt.items()}
    links = [v for n in prompt.values() for v in n["inputs"].values() if isinstance(v, list)]
    assert links and all(origin in outputs and isinstance(slot, int) and slot >= 0 for origin, slot in links)
    assert all(n["class_type"] in CORE_NODES or n["class_type"].startswith("SDXLKit_") for n in prompt.values())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("images", ["data_uri", "file"])
def test_workflow_and_api_export_convert_to_the_twin_and_back(name, images, tmp_path):
    task = twin(name)
    options = example_options(ROOT, placeholder_models(task, tmp_path), images=images)
    assert tasks_to_workflow(task, options) == workflow(name)
    assert tasks_to_api(task, options) == api(name)
    assert graph_to_tasks(workflow(name), options) == [task]
    assert graph_to_tasks(api(name), options) == [task]
