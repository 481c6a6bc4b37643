"""Round trips: task -> workflow/API -> task gives back the very same task (every field, taskUUID and image
references included), and graph -> task -> graph gives back the graph."""

from __future__ import annotations

import copy
import json
import uuid

import pytest
from graph_helpers import check_workflow, data_uri, encode, make_image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdxlkit.graph.convert import graph_to_tasks, tasks_to_api, tasks_to_workflow
from sdxlkit.graph.from_task import unheld_fields
from sdxlkit.graph.mapping import ConvertOptions
from sdxlkit.task import schema
from sdxlkit.task.model import parse_tasks
from sdxlkit.task.validate import task_problems

# Schema fields of features that have no node yet (each feature's node takes its field off this list).
NO_NODE_YET: set[str] = set()

UUID = "7c1e2d3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
BASE = {"taskType": "imageInference", "taskUUID": UUID, "model": "sd_xl_base_1.0.safetensors",
        "positivePrompt": "a lighthouse at dusk", "width": 128, "height": 128}


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("graph-roundtrip")
    (root / "input").mkdir()
    (root / "task").mkdir()
    return root


def examples():
    seed, mask = data_uri(make_image((64, 48), seed=1)), data_uri(make_image((64, 48), "L", seed=2))
    guide = data_uri(make_image((32, 32), seed=3), "JPEG")
    return {
        "txt2img": BASE | {"negativePrompt": "blurry", "seed": 7, "steps": 20, "scheduler": "DPM++ 2M Karras",
                           "CFGScale": 6.5, "clipSkip": 2, "promptWeighting": "sdEmbeds", "numberResults": 3,
                           "outputFormat": "PNG", "outputQuality": 80, "outputType": "URL", "vae": "sdxl_vae.safetensors"},
        "txt2img-bare": BASE,
        "img2img": BASE | {"inputs": {"seedImage": seed}, "strength": 0.35, "seed": 1},
        "img2img-default-strength": BASE | {"inputs": {"seedImage": seed}, "seed": 1},
        "inpaint": BASE | {"inputs": {"seedImage": seed, "maskImage": mask}, "maskMargin": 48, "seed": 2},
        "outpaint": BASE | {"inputs": {"seedImage": seed}, "outpaint": {"top": 64, "left": 0, "blur": 8}, "seed": 3,
                            "height": 176},
        "loras": BASE | {"seed": 4, "lora": [{"model": "style.safetensors", "weight": 0.6},
                                             {"model": "civitai:132942@146296"},
                                             {"model": "detail", "weight": -1.5, "transformer": "low"},
                                             {"model": "light", "transformer": "both"}]},
        "delivery": BASE | {"outputType": "dataURI", "deliveryMethod": "async", "includeCost": True, "ttl": 3600,
                            "webhookURL": "https://example.com/hook", "uploadEndpoint": "https://example.com/put",
                            "safety": {"checkContent": True, "mode": "fast"}, "outputFormat": "WEBP",
                            "outputQuality": 60},
        "explicit-defaults": BASE | {"steps": 30, "scheduler": "Default", "CFGScale": 7, "clipSkip": 0,
                                     "numberResults": 1, "outputFormat": "JPG", "outputQuality": 95,
                                     "outputType": "URL", "includeCost": False, "deliveryMethod": "sync",
                                     "safety": {}, "lora": [], "controlNet": []},
        "controlnets": BASE | {"seed": 5, "steps": 20, "controlNet": [
            {"model": "canny.safetensors", "guideImage": guide},
            {"model": "depth", "guideImage": guide, "weight": 0.5, "controlMode": "prompt", "startStep": 2, "endStep": 15},
            {"model": "pose", "guideImage": guide, "controlMode": "controlnet", "startStepPercentage": 10,
             "endStepPercentage": 80},
            {"model": "lineart", "guideImage": guide, "controlMode": "balanced", "startStepPercentage": 0, "endStep": 20},
            {"model": "tile", "guideImage": guide, "startStep": 0, "endStepPercentage": 100}]},
        "accelerator": BASE | {"seed": 8, "steps": 30, "acceleratorOptions": {
            "deepCache": True, "deepCacheInterval": 4, "deepCacheBranchId": 1, "cacheStartStep": 0,
            "cacheEndStepPercentage": 90, "teaCache": False, "cacheMaxConsecutiveSteps": 5}},
        "ip_adapters": BASE | {"seed": 6, "ipAdapters": [
            {"model": "runware:55@1", "guideImages": [guide]},
            {"model": "runware:55@2", "guideImages": [guide, seed, data_uri(make_image((40, 24), seed=9))],
             "weight": -0.4, "weightType": "strong_style_and_composition", "weightComposition": 0.25,
             "combineMethod": "norm_average", "embedScaling": "k_mean_v_penalty_c"},
            {"model": "runware:55@3", "guideImages": [seed], "weightType": "normal", "combineMethod": "concat",
             "embedScaling": "kv", "weightComposition": 1.0}]},
        "hires-defaults": BASE | {"seed": 6, "width": 1024, "height": 1024, "hiresFix": True},
        "hires": BASE | {"seed": 6, "hiresFix": {"model": "runware:esrgan@ultrasharp", "steps": 12, "strength": 0.35}},
        "hires-explicit-defaults": BASE | {"seed": 6, "hiresFix": {"model": "runware:504@1", "strength": 0.5,
                                                                    "upscaleFactor": 4}},
        "faces": BASE | {"seed": 8, "ultralytics": {"confidence": 0.4, "maskPadding": 12, "maskBlur": 9, "inpaintSize": 768,
                                                    "steps": 15, "CFGScale": 5.5, "strength": 0.45,
                                                    "positivePrompt": "a detailed face", "negativePrompt": "blurry"}},
        "faces-defaults": BASE | {"seed": 8, "ultralytics": {"steps": 20, "CFGScale": 8}},
        "faces-empty": BASE | {"seed": 8, "ultralytics": {}},
        "post-passes-and-more": BASE | {"seed": 9, "lora": [{"model": "style", "weight": 0.5}], "hiresFix": True,
                                        "ultralytics": {}, "inputs": {"seedImage": seed}, "strength": 0.6},
        "photomaker": BASE | {"positivePrompt": "a man img at dusk", "seed": 6, "photoMaker": {"images": [guide]}},
        "photomaker-batch": BASE | {"positivePrompt": "a woman img", "seed": 8, "photoMaker": {
            "images": [seed, data_uri(make_image((64, 48), seed=4)), data_uri(make_image((64, 48), seed=5), "JPEG")],
            "strength": 15, "style": "Neonpunk"}},
        "refiner-embeddings": BASE | {"seed": 6, "steps": 25, "refiner": {"model": "civitai:101055@128080", "startStep": 20},
                                      "embeddings": [{"model": "myStyle.safetensors", "weight": 0.5}, {"model": "badHands"}]},
        "refiner-default": BASE | {"seed": 6, "refiner": {"model": "refiner", "startStepPercentage": 80},
                                   "embeddings": [{"model": "e", "weight": -4}]},
        "refiner-percent": BASE | {"seed": 6, "refiner": {"model": "refiner", "startStepPercentage": 65}},
    }


def assert_round_trip(task, to_graph, dirs, images="data_uri"):
    options = ConvertOptions(input_dir=dirs / "input", images=images, base_dir=dirs / "task")
    graph = to_graph(task, options)
    (result,) = graph_to_tasks(json.loads(json.dumps(graph)), options)
    assert json.dumps(result, sort_keys=True) == json.dumps(task, sort_keys=True)
    return graph, result


def test_the_issue_task_comes_back_without_added_defaults(dirs):
    task = {"taskType": "imageInference", "taskUUID": UUID, "model": "m", "positivePrompt": "a cat", "width": 512,
            "height": 512, "seed": 3, "steps": 20}
    for to_graph in (tasks_to_workflow, tasks_to_api):
        assert graph_to_tasks(to_graph(task)) == [task]


def test_a_changed_widget_is_exported_and_unchanged_defaults_are_not(dirs):
    """The kept edits apply only while the widget holds what the import wrote."""
    workflow = tasks_to_workflow(BASE | {"seed": 5})
    (node,) = [n for n in workflow["nodes"] if n["type"] == "SDXLKit_ImageInference"]
    node["widgets_values"][7] = "Euler"  # scheduler; steps and CFGScale stay as imported
    (result,) = graph_to_tasks(workflow)
    assert result == BASE | {"seed": 5, "scheduler": "Euler"}


def test_a_graph_built_from_scratch_exports_every_core_field(dirs):
    workflow = tasks_to_workflow(BASE | {"seed": 5})
    for node in workflow["nodes"]:
        node["properties"] = {"Node name for S&R": node["type"]}
    (result,) = graph_to_tasks(workflow)
    assert {k: result[k] for k in ("steps", "scheduler", "CFGScale", "seed")} == {
        "steps": 30, "scheduler": "Default", "CFGScale": 7.0, "seed": 5}


@pytest.mark.parametrize("name", list(examples()))
@pytest.mark.parametrize("to_graph", [tasks_to_workflow, tasks_to_api], ids=["workflow", "api"])
def test_examples_round_trip(name, to_graph, dirs):
    task = examples()[name]
    parse_tasks(task)
    graph, result = assert_round_trip(task, to_graph, dirs)
    if to_graph is tasks_to_workflow:
        check_workflow(graph)


def test_round_trip_keeps_exact_values_that_are_not_defaults(dirs):
    task = examples()["controlnets"]
    _, result = assert_round_trip(task, tasks_to_workflow, dirs)
    assert result["taskUUID"] == UUID
    assert [e["model"] for e in result["controlNet"]] == ["canny.safetensors", "depth", "pose", "lineart", "tile"]
    assert {k: v for k, v in result["controlNet"][1].items() if k != "guideImage"} == {
        "model": "depth", "weight": 0.5, "controlMode": "prompt", "startStep": 2, "endStep": 15}
    assert result["controlNet"][3].keys() == {"model", "guideImage", "controlMode", "startStepPercentage", "endStep"}


def test_png_data_uris_come_back_byte_exact(dirs):
    """A PNG written the way the converter writes it (RGB, compress level 6) is the same text after a round trip."""
    from sdxlkit.graph.images import png_bytes
    from sdxlkit.images import data_uri as uri

    seed = uri(png_bytes(make_image((64, 48), seed=9)), "PNG")
    task = BASE | {"inputs": {"seedImage": seed}, "strength": 0.5, "seed": 1}
    _, result = assert_round_trip(task, tasks_to_api, dirs)
    assert result["inputs"]["seedImage"] == seed


def test_an_array_of_tasks_round_trips_in_order(dirs):
    tasks = [t | {"taskUUID": str(uuid.UUID(int=i + 1, version=4))} for i, t in enumerate(examples().values())]
    options = ConvertOptions(input_dir=dirs / "input")
    workflow = tasks_to_workflow(tasks, options)
    check_workflow(workflow)
    results = graph_to_tasks(workflow, options)
    assert [r["taskUUID"] for r in results] == [t["taskUUID"] for t in tasks]
    assert results == tasks


@pytest.mark.parametrize("to_graph", [tasks_to_workflow, tasks_to_api], ids=["workflow", "api"])
def test_graph_task_graph_is_the_same_graph(to_graph, dirs):
    options = ConvertOptions(input_dir=dirs / "input")
    tasks = [t | {"taskUUID": str(uuid.UUID(int=i + 1, version=4))} for i, t in enumerate(examples().values())
             if "seed" in t]
    graph = to_graph(tasks, options)
    assert to_graph(graph_to_tasks(graph, options), options) == graph


# --- generated tasks ---

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=2, max_size=30)
NAME = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20)


@st.composite
def image_refs(draw, dirs, mask=False, size=(16, 12)):
    """An image reference in any form a task may use: PNG/JPEG data URI, bare base64, a file in or outside the
    input folder, with modes whose reading differs between the engine and ComfyUI (RGBA, grey, RGB masks)."""
    mode = draw(st.sampled_from(["L", "RGBA", "RGB"] if mask else ["RGB", "RGBA"]))
    form = draw(st.sampled_from(["data_uri", "jpeg_uri", "base64", "input_file", "task_file"]))
    image = make_image(size, mode, seed=draw(st.integers(0, 2**16)))
    if form == "jpeg_uri" and mode != "RGBA":
        return data_uri(image, "JPEG")
    if form == "base64":
        return data_uri(image).split(",", 1)[1]
    if form in ("input_file", "task_file"):
        folder = dirs / ("input" if form == "input_file" else "task")
        name = f"gen_{mode}_{hash(image.tobytes()) & 0xFFFFFFFF:x}.png"
        (folder / name).write_bytes(encode(image))
        return str(folder / name) if form == "input_file" else name
    return data_uri(image)


def optional(draw, task, key, strategy):
    if draw(st.booleans()):
        task[key] = draw(strategy)


@st.composite
def control_entries(draw, dirs, steps):
    entry = {"model": draw(NAME), "guideImage": draw(image_refs(dirs))}
    optional(draw, entry, "weight", st.floats(-4, 4))
    optional(draw, entry, "controlMode", st.sampled_from(schema.enum("controlNet[].controlMode")))
    return entry | draw(step_window_fields(steps, "startStep", "endStep"))


@st.composite
def step_window_fields(draw, steps, start_key, end_key):
    """A valid window: each end absent, in steps or in percent (`<key>Percentage`), start in the first half."""
    fields = {}
    start = draw(st.sampled_from([None, "step", "percent"]))
    if start == "step":
        fields[start_key] = draw(st.integers(0, (steps - 1) // 2))
    elif start == "percent":
        fields[f"{start_key}Percentage"] = draw(st.integers(0, 49))
    end = draw(st.sampled_from([None, "step", "percent"]))
    if end == "step":
        fields[end_key] = draw(st.integers(steps // 2 + 1, steps))
    elif end == "percent":
        fields[f"{end_key}Percentage"] = draw(st.integers(51, 100))
    return fields


def test_every_schema_field_is_generated_or_has_no_feature_yet(dirs):
    fields = set()

    # a check of the strategy's reach: the same examples every run, so it cannot pass or fail by chance
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    @given(task=tasks(dirs))
    def collect(task):
        fields.update(task)
        fields.update(f"{k}.{n}" for k in ("safety", "outpaint") for n in task.get(k, {}))

    collect()
    assert set(schema.vendor_schema()["properties"]) - NO_NODE_YET <= fields
    task = BASE | {name: [] for name in sorted(NO_NODE_YET)}
    assert set(unheld_fields(task)) == NO_NODE_YET


@st.composite
def ip_adapter_entries(draw, dirs):
    entry = {"model": draw(st.sampled_from(schema.enum("ipAdapters[].model"))),
             "guideImages": draw(st.lists(image_refs(dirs), min_size=1, max_size=6))}
    optional(draw, entry, "weight", st.floats(-4, 4))
    optional(draw, entry, "weightComposition", st.floats(0, 1))
    for key in ("weightType", "combineMethod", "embedScaling"):
        optional(draw, entry, key, st.sampled_from(schema.enum(f"ipAdapters[].{key}")))
    return entry


@st.composite
def accelerator_options(draw, steps):
    options = draw(st.fixed_dictionaries({}, optional={
        "deepCache": st.booleans(), "deepCacheInterval": st.integers(1, 10), "deepCacheBranchId": st.integers(0, 8),
        "teaCache": st.booleans(), "teaCacheDistance": st.floats(0, 1),
        "cacheMaxConsecutiveSteps": st.integers(1, 5)}))
    return options | draw(step_window_fields(steps, "cacheStartStep", "cacheEndStep"))


@st.composite
def tasks(draw, dirs):
    """A valid task with any combination of the fields that have a node."""
    task = {"taskType": "imageInference", "taskUUID": str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)), version=4)),
            "model": draw(NAME), "positivePrompt": draw(TEXT),
            "width": draw(st.integers(16, 256)) * 8, "height": draw(st.integers(16, 256)) * 8}
    optional(draw, task, "vae", NAME)
    optional(draw, task, "negativePrompt", TEXT)
    optional(draw, task, "seed", st.integers(0, 2**63 - 20))  # image i of numberResults (<= 20) takes seed + i
    steps = draw(st.integers(1, 50))
    if draw(st.booleans()) or draw(st.booleans()):
        task["steps"] = steps
    else:
        steps = 30
    optional(draw, task, "scheduler", st.sampled_from(schema.enum("scheduler")))
    optional(draw, task, "CFGScale", st.floats(0, 30))
    optional(draw, task, "clipSkip", st.integers(0, 4))
    optional(draw, task, "promptWeighting", st.sampled_from(schema.enum("promptWeighting")))
    optional(draw, task, "numberResults", st.integers(1, 20))
    optional(draw, task, "outputFormat", st.sampled_from(schema.enum("outputFormat")))
    optional(draw, task, "outputQuality", st.integers(20, 99))
    optional(draw, task, "outputType", st.sampled_from(schema.enum("outputType")))
    optional(draw, task, "includeCost", st.booleans())
    optional(draw, task, "deliveryMethod", st.sampled_from(schema.enum("deliveryMethod")))
    optional(draw, task, "ttl", st.integers(60, 10**6))
    optional(draw, task, "webhookURL", st.sampled_from(["https://example.com/hook", "http://10.0.0.2:8080/cb?x=1"]))
    optional(draw, task, "uploadEndpoint", st.sampled_from(["https://bucket.example.com/put/1.png"]))
    optional(draw, task, "safety", st.fixed_dictionaries(
        {}, optional={"checkContent": st.booleans(), "mode": st.sampled_from(schema.enum("safety.mode"))}))
    mode = draw(st.sampled_from(["txt2img", "img2img", "inpaint", "outpaint"]))
    if mode != "txt2img":
        task["inputs"] = {"seedImage": draw(image_refs(dirs))}
        optional(draw, task, "strength", st.floats(0, 1))
    if mode == "inpaint":
        task["inputs"]["maskImage"] = draw(image_refs(dirs, mask=True))
        optional(draw, task, "maskMargin", st.integers(32, 128))
    if mode == "outpaint":
        sides = draw(st.dictionaries(st.sampled_from(["top", "right", "bottom", "left"]),
                                     st.integers(0, 4).map(lambda n: n * 64), min_size=1))
        if not any(sides.values()):
            sides[draw(st.sampled_from(sorted(sides)))] = 64
        task["outpaint"] = sides
        optional(draw, task["outpaint"], "blur", st.integers(0, 32))
        optional(draw, task, "strength", st.floats(0, 1))
    if draw(st.booleans()):
        task["lora"] = draw(st.lists(st.fixed_dictionaries(
            {"model": NAME}, optional={"weight": st.floats(-4, 4), "transformer": st.sampled_from(["high", "low", "both"])}),
            max_size=3))
    if draw(st.booleans()):
        task["controlNet"] = draw(st.lists(control_entries(dirs, steps), max_size=3))
    if draw(st.booleans()):
        task["ipAdapters"] = draw(st.lists(ip_adapter_entries(dirs), max_size=2))
    if mode != "outpaint" and draw(st.booleans()):
        task["hiresFix"] = draw(st.one_of(st.just(True), st.fixed_dictionaries(
            {"model": st.sampled_from(schema.field("hiresFix")["oneOf"][1]["properties"]["model"]["enum"])},
            optional={"steps": st.integers(1, 150), "strength": st.floats(0, 1), "upscaleFactor": st.just(4)})))
    optional(draw, task, "ultralytics", st.fixed_dictionaries({}, optional={
        "confidence": st.floats(0, 1), "maskPadding": st.integers(0, 20), "maskBlur": st.integers(0, 100),
        "inpaintSize": st.integers(8, 256).map(lambda n: n * 8), "steps": st.integers(1, 100),
        "CFGScale": st.floats(0, 50), "strength": st.floats(0, 1), "positivePrompt": TEXT, "negativePrompt": TEXT}))
    if draw(st.booleans()):
        task["photoMaker"] = {"images": draw(st.lists(image_refs(dirs), min_size=1, max_size=4))}
        optional(draw, task["photoMaker"], "strength", st.integers(15, 50))
        optional(draw, task["photoMaker"], "style", st.sampled_from(schema.enum("photoMaker.style")))
    if draw(st.booleans()):
        task["embeddings"] = draw(st.lists(st.fixed_dictionaries({"model": NAME}, optional={"weight": st.floats(-4, 4)}),
                                           min_size=1, max_size=3))
    if draw(st.booleans()) and mode == "txt2img" and steps >= 3:  # img2img also needs a switch after strength's start
        start = draw(st.sampled_from([None, "step", "percent"]))
        task["refiner"] = {"model": draw(NAME)}
        if start == "step":
            task["refiner"]["startStep"] = draw(st.integers(2, min(steps - 1, 50)))
        elif start == "percent":
            task["refiner"]["startStepPercentage"] = draw(st.integers(1, 99).filter(lambda p: 1 <= steps * p // 100 < steps))
    optional(draw, task, "acceleratorOptions", accelerator_options(steps))
    assert task_problems(task) == [], task_problems(task)
    return task


ROUND_TRIP_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def generated(dirs):
    return tasks(dirs)


@pytest.mark.parametrize("to_graph", [tasks_to_workflow, tasks_to_api], ids=["workflow", "api"])
def test_generated_tasks_round_trip(to_graph, dirs, generated):
    @ROUND_TRIP_SETTINGS
    @given(task=generated, images=st.sampled_from(["data_uri", "file"]))
    def check(task, images):
        original = copy.deepcopy(task)
        graph, _ = assert_round_trip(task, to_graph, dirs, images)
        assert task == original, "conversion must not change its input"
        json.dumps(graph)
        if to_graph is tasks_to_workflow:
            check_workflow(graph)

    check()


def test_generated_graphs_survive_graph_task_graph(dirs, generated):
    """With images="file" a graph's image files are referenced as they are, so the graph comes back exactly
    (except the seed control, which is "fixed" once the task has a seed)."""

    @ROUND_TRIP_SETTINGS
    @given(task=generated, seed=st.integers(0, 2**32))
    def check(task, seed):
        task = {"seed": seed} | task  # without one, each import draws another seed
        options = ConvertOptions(input_dir=dirs / "input", images="file", base_dir=dirs / "task")
        for to_graph in (tasks_to_workflow, tasks_to_api):
            graph = to_graph(task, options)
            again = to_graph(graph_to_tasks(graph, options), options)
            assert again == graph

    check()


def test_a_task_without_prompt_weighting_becomes_a_plain_text_node(dirs):
    """New nodes default to sdEmbeds, but a task that leaves promptWeighting out keeps plain text in the graph."""
    api = tasks_to_api([BASE], ConvertOptions(input_dir=dirs / "input"))
    (node,) = [n for n in api.values() if n["class_type"] == "SDXLKit_ImageInference"]
    assert node["inputs"]["prompt_weighting"] == "none"
    assert "promptWeighting" not in graph_to_tasks(api, ConvertOptions(input_dir=dirs / "input"))[0]
    weighted = tasks_to_api([BASE | {"promptWeighting": "compel"}], ConvertOptions(input_dir=dirs / "input"))
    assert [n["inputs"]["prompt_weighting"] for n in weighted.values() if "prompt_weighting" in n["inputs"]] == ["compel"]
