"""Graph <-> task conversion: the node mappings against the real node definitions, the written formats, images,
model references, refused fields, graphs the way users build them, and the CLI."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from graph_helpers import check_workflow, data_uri, encode, make_image, pixels
from PIL import Image

from sdxlkit.cli import main
from sdxlkit.graph.convert import convert, detect_format, graph_to_tasks, tasks_to_api, tasks_to_workflow
from sdxlkit.graph.mapping import ConvertOptions, GraphConversionError, Socket, Widget
from sdxlkit.graph.mappings import MAPPINGS
from sdxlkit.metadata import TASK_KEY, encode_with_metadata

UUID = "2b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e"
TASK = {"taskType": "imageInference", "taskUUID": UUID, "model": "base.safetensors", "positivePrompt": "a red boat",
        "width": 128, "height": 128, "seed": 11}
PACK_NODES = ("SDXLKit_Loader", "SDXLKit_LoraStack", "SDXLKit_ControlNet", "SDXLKit_ImageInference",
              "SDXLKit_Inference", "SDXLKit_Save", "SDXLKit_Denoise", "SDXLKit_InpaintOptions", "SDXLKit_Outpaint",
              "SDXLKit_Delivery", "SDXLKit_Safety")
INFERENCE = "SDXLKit_ImageInference"
PART_INPUTS = ["denoise", "inpaint", "outpaint", "delivery", "safety", "ip_adapter_stack", "photomaker", "hires_fix",
               "face_detailer", "refiner", "embedding_stack", "accelerator"]
WIDGET_IO = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


def opts(tmp_path, **kwargs) -> ConvertOptions:
    (tmp_path / "input").mkdir(exist_ok=True)
    return ConvertOptions(input_dir=tmp_path / "input", **kwargs)


def node_of(graph: dict, class_type: str) -> tuple[str, dict]:
    (found,) = [(k, v) for k, v in graph.items() if v["class_type"] == class_type]
    return found


# --- the mappings are the nodes ---

@pytest.fixture(scope="module")
def schemas(pack):
    extension = asyncio.run(pack.comfy_entrypoint())
    return {cls.define_schema().node_id: cls.define_schema() for cls in asyncio.run(extension.get_node_list())}


@pytest.mark.parametrize("node_id", PACK_NODES)
def test_mapping_matches_the_node_definition(schemas, node_id):
    """Same inputs in the same order, with socket/widget kind, type, default, optionality and seed control."""
    definition, mapping = schemas[node_id], MAPPINGS[node_id]
    declared = []
    for i in definition.inputs:
        kwargs = i.kwargs
        if i.io_type in WIDGET_IO and not kwargs.get("force_input"):
            declared.append(("widget", i.id, i.io_type, kwargs.get("default"), bool(kwargs.get("control_after_generate")),
                             bool(kwargs.get("multiline"))))
        else:
            declared.append(("socket", i.id, i.io_type, bool(kwargs.get("optional"))))
    mapped = [("widget", i.name, i.type, i.default, i.control_after_generate, i.multiline) if isinstance(i, Widget)
              else ("socket", i.name, i.type, i.optional) for i in mapping.inputs]
    assert mapped == declared
    assert [(o.name, o.type) for o in mapping.outputs] == [(o.display_name, o.io_type) for o in definition.outputs]
    assert mapping.title == definition.display_name


# --- what is written ---

def test_workflow_shape_and_widget_order():
    workflow = tasks_to_workflow(TASK | {"negativePrompt": "fog", "steps": 12, "outputFormat": "WEBP"})
    check_workflow(workflow)
    nodes = {n["type"]: n for n in workflow["nodes"]}
    assert list(nodes) == ["SDXLKit_Loader", INFERENCE, "SDXLKit_Save"]
    inference = nodes[INFERENCE]
    assert inference["widgets_values"][:7] == ["a red boat", "fog", 128, 128, 11, "fixed", 12]
    assert len(inference["widgets_values"]) == 12
    assert [i["name"] for i in inference["inputs"]] == ["model", "seed_image", "mask_image", "lora_stack",
                                                        "control_stack", *PART_INPUTS]
    assert inference["properties"]["taskUUID"] == UUID
    assert nodes["SDXLKit_Save"]["widgets_values"] == ["sdxlkit", "WEBP", 95]
    assert nodes["SDXLKit_Loader"]["widgets_values"] == ["base.safetensors", "(checkpoint's own)", "auto", "auto", False]
    xs = [nodes[t]["pos"][0] for t in ("SDXLKit_Loader", INFERENCE, "SDXLKit_Save")]
    assert xs == sorted(xs) and len(set(xs)) == 3


def test_layout_fits_a_task_in_the_window_and_shows_long_model_names(tmp_path):
    """A 1400 x 900 window shows a full task (stacks and options included) below the tab bar at the zoom the
    workflow sets, which stays above the frontend's 0.6, below which it draws no text."""
    from sdxlkit.graph.layout import CHAR_WIDTH

    def on_screen(workflow, nodes):
        scale, (ox, oy) = workflow["extra"]["ds"]["scale"], workflow["extra"]["ds"]["offset"]
        left = min((n["pos"][0] + ox) * scale for n in nodes)
        top = min((n["pos"][1] - 30 + oy) * scale for n in nodes)
        right = max((n["pos"][0] + n["size"][0] + ox) * scale for n in nodes)
        bottom = max((n["pos"][1] + n["size"][1] + oy) * scale for n in nodes)
        return left >= 0 and top >= 75 and right <= 1360 and bottom <= 900 - 40

    name = "juggernautXL_v9Rdphoto2Lightning_extra_long_name.safetensors"
    task = TASK | {"model": name, "lora": [{"model": "a_rather_long_lora_file_name_v2.safetensors"}],
                   "inputs": {"seedImage": data_uri(make_image())}, "strength": 0.5, "outputType": "dataURI"}
    workflow = tasks_to_workflow(task, opts(tmp_path))
    check_workflow(workflow)
    scale = workflow["extra"]["ds"]["scale"]
    assert 0.6 < scale < 1 and on_screen(workflow, workflow["nodes"])
    bare = tasks_to_workflow(TASK)
    assert bare["extra"]["ds"]["scale"] > 0.8 and on_screen(bare, bare["nodes"])
    several = tasks_to_workflow([task | {"taskUUID": str(uuid.uuid4())} for _ in range(4)], opts(tmp_path))
    assert several["extra"]["ds"] == workflow["extra"]["ds"]  # bands below each other: the view of one band
    first_band = [n for n in several["nodes"] if n["id"] <= len(workflow["nodes"])]
    assert on_screen(several, first_band)
    loader = next(n for n in workflow["nodes"] if n["type"] == "SDXLKit_Loader")
    assert loader["size"][0] >= CHAR_WIDTH * (len("ckpt_name") + len(name))


def test_api_prompt_shape():
    prompt = tasks_to_api(TASK | {"lora": [{"model": "a"}, {"model": "b", "weight": 0.5}]})
    (save_id, save) = node_of(prompt, "SDXLKit_Save")
    (inference_id, inference) = node_of(prompt, INFERENCE)
    assert save["inputs"]["images"] == [inference_id, 0] and save["inputs"]["task"] == [inference_id, 1]
    assert inference["_meta"]["title"] == "SDXL Inference" and inference["_meta"]["taskUUID"] == UUID
    assert "control_after_generate" not in json.dumps(prompt)
    first, second = sorted((k for k, v in prompt.items() if v["class_type"] == "SDXLKit_LoraStack"), key=int)
    assert "lora_stack" not in prompt[first]["inputs"] and prompt[second]["inputs"]["lora_stack"] == [first, 0]
    assert inference["inputs"]["lora_stack"] == [second, 0]
    assert prompt[second]["inputs"] == {"lora_name": "b", "weight": 0.5, "transformer": "both", "lora_stack": [first, 0]}


def test_a_task_without_seed_gets_one_and_a_randomizing_control():
    bare = {k: v for k, v in TASK.items() if k != "seed"}
    workflow = tasks_to_workflow(bare)
    values = next(n for n in workflow["nodes"] if n["type"] == INFERENCE)["widgets_values"]
    assert isinstance(values[4], int) and 0 <= values[4] < 2**32 and values[5] == "randomize"
    assert "seed" not in graph_to_tasks(workflow)[0]  # unchanged: the task had none
    values[4] += 1  # a run with "randomize" changes it, and the task then has the seed that ran
    assert graph_to_tasks(workflow)[0]["seed"] == values[4]


def test_layout_of_a_full_task_reads_left_to_right(tmp_path):
    guide = data_uri(make_image(seed=4))
    task = TASK | {"inputs": {"seedImage": data_uri(make_image(seed=5)), "maskImage": data_uri(make_image(mode="L"))},
                   "lora": [{"model": "a"}, {"model": "b"}],
                   "controlNet": [{"model": "c", "guideImage": guide}, {"model": "d", "guideImage": guide}]}
    workflow = tasks_to_workflow(task, opts(tmp_path))
    check_workflow(workflow)
    x = {}
    for node in workflow["nodes"]:
        x.setdefault(node["type"], set()).add(node["pos"][0])
    left = x["SDXLKit_Loader"] | x["LoadImage"] | x["LoadImageMask"]
    stacks = x["SDXLKit_LoraStack"] | x["SDXLKit_ControlNet"]
    assert len(left) == len(stacks) == 1
    assert max(left) < min(stacks) < min(x[INFERENCE]) < min(x["SDXLKit_Save"])
    masks = [n for n in workflow["nodes"] if n["type"] == "LoadImageMask"]
    assert masks[0]["widgets_values"][1:] == ["red", "image"]


# --- fields no node holds ---

def test_fields_no_node_holds_are_refused_by_name(monkeypatch):
    """Every field has a node today; a field a future schema adds before its node must be refused, not dropped."""
    from sdxlkit.graph import from_task

    monkeypatch.setattr(from_task, "MAPPINGS", {k: m for k, m in from_task.MAPPINGS.items()
                                                if k != "SDXLKit_AcceleratorCache"})
    for to in ("api", "workflow"):
        with pytest.raises(GraphConversionError, match="no node holds these task fields[^.]*: acceleratorOptions\\."):
            convert(TASK | {"acceleratorOptions": {}, "ttl": 120}, to)


def test_accelerator_options_live_on_the_accelerator_cache_node():
    task = TASK | {"acceleratorOptions": {"deepCache": True, "deepCacheInterval": 4, "cacheStartStepPercentage": 10}}
    prompt = tasks_to_api(task)
    accelerator_id, accelerator = node_of(prompt, "SDXLKit_AcceleratorCache")
    assert accelerator["inputs"] == {
        "deep_cache": True, "deep_cache_interval": 4, "deep_cache_branch_id": 0, "tea_cache": False,
        "tea_cache_distance": 0.5, "cache_start_step": -1, "cache_end_step": 0, "cache_start_percent": 10,
        "cache_end_percent": 0, "max_consecutive_cached": 3}
    assert node_of(prompt, INFERENCE)[1]["inputs"]["accelerator"] == [accelerator_id, 0]
    assert graph_to_tasks(prompt) == [task]
    for node in prompt.values():  # built from scratch: every set widget written, the unset windows left out
        node["_meta"] = {}
    (result,) = graph_to_tasks(prompt)
    assert result["acceleratorOptions"] == {
        "deepCache": True, "deepCacheInterval": 4, "deepCacheBranchId": 0, "teaCache": False, "teaCacheDistance": 0.5,
        "cacheStartStepPercentage": 10, "cacheMaxConsecutiveSteps": 3}


def test_delivery_and_safety_fields_live_on_their_option_nodes():
    task = TASK | {"outputType": "dataURI", "includeCost": True, "ttl": 120, "webhookURL": "https://example.com/h",
                   "safety": {"checkContent": True}}
    prompt = tasks_to_api(task)
    delivery, safety = node_of(prompt, "SDXLKit_Delivery")[1], node_of(prompt, "SDXLKit_Safety")[1]
    assert delivery["inputs"] == {"output_type": "dataURI", "delivery_method": "sync", "include_cost": True,
                                  "ttl": 120, "webhook_url": "https://example.com/h", "upload_endpoint": ""}
    assert safety["inputs"] == {"check_content": True, "mode": "not set"}  # mode would decide over checkContent
    inference_id, inference = node_of(prompt, INFERENCE)
    assert inference["inputs"]["delivery"] == [node_of(prompt, "SDXLKit_Delivery")[0], 0]
    assert graph_to_tasks(prompt) == [task]
    for node in prompt.values():  # as built from scratch: every widget written
        node["_meta"] = {}
    (result,) = graph_to_tasks(prompt)
    assert {k: result[k] for k in ("outputType", "deliveryMethod", "includeCost", "ttl", "webhookURL", "safety")} == {
        "outputType": "dataURI", "deliveryMethod": "sync", "includeCost": True, "ttl": 120,
        "webhookURL": "https://example.com/h", "safety": {"checkContent": True}}
    assert "uploadEndpoint" not in result


def test_outpaint_with_every_side_zero_round_trips_on_the_outpaint_node(tmp_path):
    task = TASK | {"inputs": {"seedImage": data_uri(make_image())}, "outpaint": {"top": 0, "blur": 4}}
    prompt = tasks_to_api(task, opts(tmp_path))
    assert node_of(prompt, "SDXLKit_Outpaint")[1]["inputs"] == {"top": 0, "right": 0, "bottom": 0, "left": 0, "blur": 4}
    assert graph_to_tasks(prompt, opts(tmp_path)) == [task]


def test_the_deprecated_inference_node_still_converts_both_ways(tmp_path):
    """A workflow saved with SDXLKit_Inference (20 widgets) gives its task; build_legacy writes that node."""
    from sdxlkit.graph.api_prompt import api_from_graph
    from sdxlkit.graph.mappings.inference import build_legacy
    from sdxlkit.graph.structure import Graph
    from sdxlkit.graph.ui_workflow import workflow_from_graph

    seed = data_uri(make_image(seed=3))
    for task in (TASK | {"inputs": {"seedImage": seed}, "strength": 0.4},
                 TASK | {"inputs": {"seedImage": seed}, "outpaint": {"left": 64, "blur": 8}, "width": 192},
                 TASK | {"inputs": {"seedImage": seed, "maskImage": data_uri(make_image(mode="L"))}, "maskMargin": 40,
                         "strength": 0.8}):
        graph = Graph()
        build_legacy(task, graph, opts(tmp_path))
        workflow, prompt = workflow_from_graph(graph), api_from_graph(graph)
        (legacy,) = [n for n in workflow["nodes"] if n["type"] == "SDXLKit_Inference"]
        assert len(legacy["widgets_values"]) == 20
        for graph_document in (workflow, prompt):
            (result,) = graph_to_tasks(graph_document, opts(tmp_path))
            assert {k: v for k, v in result.items() if k not in ("steps", "scheduler", "CFGScale")} == (
                {"strength": 1.0} | task)  # the deprecated node always wrote strength
    with pytest.raises(GraphConversionError, match="every side 0"):
        build_legacy(TASK | {"inputs": {"seedImage": seed}, "outpaint": {"top": 0}}, Graph(), opts(tmp_path))


def test_invalid_tasks_are_reported_not_converted():
    from sdxlkit.errors import TaskValidationError

    with pytest.raises(TaskValidationError, match=r"\$\.width"):
        tasks_to_api(TASK | {"width": 100})


# --- images ---

def test_task_images_become_hash_named_files_reused_on_every_conversion(tmp_path):
    options = opts(tmp_path)
    seed = data_uri(make_image(seed=1))
    task = TASK | {"inputs": {"seedImage": seed}}
    first = node_of(tasks_to_api(task, options), "LoadImage")[1]["inputs"]["image"]
    files = sorted(p.name for p in options.input_dir.iterdir())
    second = node_of(tasks_to_api(task | {"taskUUID": str(uuid.uuid4())}, options), "LoadImage")[1]["inputs"]["image"]
    assert first == second and files == [first] == sorted(p.name for p in options.input_dir.iterdir())
    assert first.startswith("sdxlkit_") and first.endswith(".png")
    assert Image.open(options.input_dir / first).tobytes() == make_image(seed=1).tobytes()


def test_a_file_already_in_the_input_folder_is_referenced_as_it_is(tmp_path):
    options = opts(tmp_path)
    (options.input_dir / "sub").mkdir()
    make_image(seed=2).save(options.input_dir / "sub" / "photo.png")
    make_image(mode="L", seed=3).save(options.input_dir / "mask.png")
    task = TASK | {"inputs": {"seedImage": str(options.input_dir / "sub" / "photo.png"),
                              "maskImage": str(options.input_dir / "mask.png")}}
    prompt = tasks_to_api(task, options)
    assert node_of(prompt, "LoadImage")[1]["inputs"]["image"] == "sub/photo.png"
    assert node_of(prompt, "LoadImageMask")[1]["inputs"] == {"image": "mask.png", "channel": "red"}
    (result,) = graph_to_tasks(prompt, ConvertOptions(input_dir=options.input_dir, images="file"))
    assert result["inputs"] == {"seedImage": str(options.input_dir / "sub" / "photo.png"),
                                "maskImage": str(options.input_dir / "mask.png")}


def test_images_read_differently_by_comfyui_are_normalised(tmp_path):
    """An RGBA seed image (the engine composites on white, LoadImage drops alpha) and an RGBA mask (the engine
    reads alpha, LoadImageMask red would read red) are written as the engine reads them."""
    options = opts(tmp_path)
    rgba = make_image(mode="RGBA", seed=4)
    rgba.save(options.input_dir / "rgba.png")
    task = TASK | {"inputs": {"seedImage": str(options.input_dir / "rgba.png"), "maskImage": data_uri(rgba)}}
    prompt = tasks_to_api(task, options)
    seed_name = node_of(prompt, "LoadImage")[1]["inputs"]["image"]
    mask_name = node_of(prompt, "LoadImageMask")[1]["inputs"]["image"]
    assert seed_name != "rgba.png"
    assert Image.open(options.input_dir / seed_name).mode == "RGB"
    assert Image.open(options.input_dir / mask_name).tobytes() == rgba.getchannel("A").tobytes()
    (result,) = graph_to_tasks(prompt, options)
    assert pixels(result["inputs"]["seedImage"], False) == pixels(task["inputs"]["seedImage"], False)
    assert pixels(result["inputs"]["maskImage"], True) == pixels(task["inputs"]["maskImage"], True)


@pytest.mark.parametrize("channel", ["red", "green", "blue", "alpha"])
def test_load_image_mask_channels_read_as_comfyui_does(tmp_path, channel):
    options = opts(tmp_path)
    rgba = make_image(mode="RGBA", seed=5)
    rgba.save(options.input_dir / "m.png")
    prompt = tasks_to_api(TASK | {"inputs": {"seedImage": data_uri(make_image()), "maskImage": data_uri(rgba)}}, options)
    node_of(prompt, "LoadImageMask")[1]["inputs"].update(image="m.png", channel=channel)
    (result,) = graph_to_tasks(prompt, options)
    band = rgba.getchannel(channel[0].upper())
    expected = band.point(lambda v: 255 - v) if channel == "alpha" else band
    assert pixels(result["inputs"]["maskImage"], True)[2] == expected.tobytes()


def test_a_mask_painted_in_comfyui_comes_from_load_image_alpha(tmp_path):
    """LoadImage's MASK output (1 - alpha, what the mask editor paints) may feed the mask input."""
    options = opts(tmp_path)
    painted = make_image(mode="RGBA", seed=6)
    painted.save(options.input_dir / "painted.png")
    make_image(seed=7).save(options.input_dir / "plain.png")
    prompt = {"1": {"class_type": "SDXLKit_Loader", "inputs": {"ckpt_name": "m", "vae_name": "(checkpoint's own)", "precision": "auto"}},
              "2": {"class_type": "LoadImage", "inputs": {"image": "painted.png", "upload": "image"}},
              "3": {"class_type": INFERENCE, "inputs": node_of(tasks_to_api(TASK), INFERENCE)[1]["inputs"] | {
                  "model": ["1", 0], "seed_image": ["2", 0], "mask_image": ["2", 1]}}}
    (result,) = graph_to_tasks(prompt, options)
    assert pixels(result["inputs"]["maskImage"], True)[2] == painted.getchannel("A").point(lambda v: 255 - v).tobytes()
    assert pixels(result["inputs"]["seedImage"], False)[2] == painted.convert("RGB").tobytes()
    prompt["2"]["inputs"]["image"] = "plain.png"
    with pytest.raises(GraphConversionError, match="no alpha channel"):
        graph_to_tasks(prompt, options)


def test_file_mode_writes_a_normalised_copy_when_the_engine_would_read_the_file_differently(tmp_path):
    options = opts(tmp_path)
    make_image(mode="RGBA", seed=8).save(options.input_dir / "alpha.png")
    prompt = tasks_to_api(TASK | {"inputs": {"seedImage": data_uri(make_image())}}, options)
    node_of(prompt, "LoadImage")[1]["inputs"]["image"] = "alpha.png [input]"
    (result,) = graph_to_tasks(prompt, ConvertOptions(input_dir=options.input_dir, images="file"))
    path = Path(result["inputs"]["seedImage"])
    assert path.is_absolute() and path.parent == options.input_dir and path.name != "alpha.png"
    assert Image.open(path).tobytes() == Image.open(options.input_dir / "alpha.png").convert("RGB").tobytes()


def test_long_bare_base64_images_convert(tmp_path):
    image = make_image(seed=31)
    ref = data_uri(image).split(",", 1)[1]
    assert len(ref.split("/")[0]) > 255
    prompt = tasks_to_api(TASK | {"inputs": {"seedImage": ref}}, opts(tmp_path))
    assert pixels(graph_to_tasks(prompt, opts(tmp_path))[0]["inputs"]["seedImage"], False)[2] == image.tobytes()


def test_images_need_the_input_folder_and_stay_inside_it(tmp_path):
    task = TASK | {"inputs": {"seedImage": data_uri(make_image())}}
    with pytest.raises(GraphConversionError, match="input folder"):
        tasks_to_api(task)
    options = opts(tmp_path)
    prompt = tasks_to_api(task, options)
    node_of(prompt, "LoadImage")[1]["inputs"]["image"] = "../outside.png"
    (tmp_path / "outside.png").write_bytes(encode(make_image()))
    with pytest.raises(GraphConversionError, match="not a file in"):
        graph_to_tasks(prompt, options)


def test_an_image_from_another_node_type_names_that_node(tmp_path):
    prompt = tasks_to_api(TASK)
    inference_id, inference = node_of(prompt, INFERENCE)
    prompt["40"] = {"class_type": "VAEDecode", "inputs": {"samples": ["41", 0], "vae": ["42", 0]}}
    inference["inputs"]["seed_image"] = ["40", 0]
    with pytest.raises(GraphConversionError, match=r"seed_image.*node 40 \(VAEDecode\)"):
        graph_to_tasks(prompt, opts(tmp_path))
    inference["inputs"]["seed_image"] = [inference_id, 0]
    with pytest.raises(GraphConversionError, match=f"node {inference_id} .* cycle"):
        graph_to_tasks(prompt, opts(tmp_path))


def test_links_of_the_wrong_type_are_refused(tmp_path):
    prompt = tasks_to_api(TASK | {"controlNet": [{"model": "c", "guideImage": data_uri(make_image())}]}, opts(tmp_path))
    control_id, _ = node_of(prompt, "SDXLKit_ControlNet")
    inference = node_of(prompt, INFERENCE)[1]
    inference["inputs"]["lora_stack"] = [control_id, 0]
    with pytest.raises(GraphConversionError, match=f"'lora_stack'.*output 0 of node {control_id}.*not a SDXLKIT_LORA_STACK"):
        graph_to_tasks(prompt, opts(tmp_path))


# --- model references ---

@pytest.fixture()
def models(tmp_path):
    root = tmp_path / "models"
    for rel in ("checkpoints/sd_xl_base_1.0_0.9vae.safetensors", "checkpoints/other.safetensors",
                "vae/sdxl-vae-fp16-fix.safetensors", "loras/style.safetensors", "controlnet/canny.safetensors",
                "diffusers/tiny/model_index.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    (root / "sdxlkit_models.json").write_text(json.dumps({"civitai:132942@146296": "loras/style.safetensors"}))
    return root


def test_model_ids_map_to_file_names_and_back(tmp_path, models):
    options = opts(tmp_path, models_dir=models)
    guide = data_uri(make_image())
    task = TASK | {"model": "civitai:101055@128078", "vae": "sdxl-vae-fp16-fix",
                   "lora": [{"model": "civitai:132942@146296", "weight": 1}],
                   "controlNet": [{"model": "canny", "guideImage": guide, "weight": 1}]}
    prompt = tasks_to_api(task, options)
    assert node_of(prompt, "SDXLKit_Loader")[1]["inputs"]["ckpt_name"] == "sd_xl_base_1.0_0.9vae.safetensors"
    assert node_of(prompt, "SDXLKit_Loader")[1]["inputs"]["vae_name"] == "sdxl-vae-fp16-fix.safetensors"
    assert node_of(prompt, "SDXLKit_LoraStack")[1]["inputs"]["lora_name"] == "style.safetensors"
    assert node_of(prompt, "SDXLKit_ControlNet")[1]["inputs"]["control_net_name"] == "canny.safetensors"
    assert graph_to_tasks(prompt, options) == [task]  # the references as the task wrote them
    node_of(prompt, "SDXLKit_Loader")[1]["inputs"]["vae_name"] = "sdxl-vae-fp16-fix.safetensors"
    node_of(prompt, "SDXLKit_ControlNet")[1]["_meta"] = {}
    for node in prompt.values():
        node["_meta"] = {}
    (result,) = graph_to_tasks(prompt, options)
    assert result["model"] == "civitai:101055@128078" and result["vae"] == "sdxl-vae-fp16-fix.safetensors"
    assert result["lora"] == [{"model": "civitai:132942@146296", "weight": 1}]
    assert result["controlNet"][0]["model"] == "canny.safetensors"
    (verbatim,) = graph_to_tasks(prompt, ConvertOptions(input_dir=options.input_dir))
    assert verbatim["model"] == "sd_xl_base_1.0_0.9vae.safetensors"


def test_diffusers_folders_and_missing_or_outside_models(tmp_path, models):
    options = opts(tmp_path, models_dir=models)
    prompt = tasks_to_api(TASK | {"model": "tiny"}, options)
    assert node_of(prompt, "SDXLKit_Loader")[1]["inputs"]["ckpt_name"] == "diffusers/tiny"
    assert graph_to_tasks(prompt, options)[0]["model"] == "tiny"
    node_of(prompt, "SDXLKit_Loader")[1]["inputs"]["ckpt_name"] = "gone.safetensors"
    with pytest.raises(GraphConversionError, match="gone.safetensors"):
        graph_to_tasks(prompt, options)
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes(b"")
    with pytest.raises(GraphConversionError, match="outside"):
        tasks_to_api(TASK | {"model": str(outside)}, options)
    from sdxlkit.errors import ModelNotFound

    with pytest.raises(ModelNotFound):
        tasks_to_api(TASK | {"model": "civitai:1@2"}, options)


# --- graphs as users build them ---

def test_api_graph_with_its_own_ids_gives_one_task_per_inference_node_in_id_order():
    base = tasks_to_api(TASK)
    loader, inference = base["1"], base["2"]
    other_uuid = str(uuid.uuid4())
    prompt = {
        "30": inference | {"inputs": inference["inputs"] | {"model": ["7", 0], "seed": 3}, "_meta": {"title": "x"}},
        "7": loader,
        "12": inference | {"inputs": inference["inputs"] | {"model": ["7", 0], "seed": 1},
                           "_meta": {"title": "y", "taskUUID": other_uuid}},
        "99": {"class_type": "SomethingElse", "inputs": {"value": ["30", 0]}},
        "100": inference | {"inputs": inference["inputs"] | {"model": ["7", 0], "seed": 2},
                            "_meta": {"title": "copy", "taskUUID": other_uuid}},
    }
    tasks = graph_to_tasks(prompt)
    assert [t["seed"] for t in tasks] == [1, 3, 2]
    assert tasks[0]["taskUUID"] == other_uuid
    assert len({t["taskUUID"] for t in tasks}) == 3
    assert all(uuid.UUID(t["taskUUID"]).version == 4 for t in tasks)


def test_save_nodes_set_output_fields_and_must_agree():
    prompt = tasks_to_api(TASK | {"outputFormat": "PNG"})
    save_id, save = node_of(prompt, "SDXLKit_Save")
    assert graph_to_tasks(prompt)[0]["outputFormat"] == "PNG"
    prompt["50"] = save | {"inputs": save["inputs"] | {"output_format": "JPG"}}
    with pytest.raises(GraphConversionError, match=f"{save_id} and 50"):
        graph_to_tasks(prompt)
    del prompt["50"], prompt[save_id]
    assert "outputFormat" not in graph_to_tasks(prompt)[0]


def test_ui_workflow_as_the_frontend_saves_it(tmp_path):
    """Widget inputs listed with `widget`, a Reroute, a bypassed and a muted LoRA node, a PrimitiveNode driving the
    seed, an unknown node elsewhere: the same task as without them."""
    task = TASK | {"lora": [{"model": "a", "weight": 0.5}, {"model": "b", "weight": 1}]}
    workflow = tasks_to_workflow(task)
    nodes = {n["id"]: n for n in workflow["nodes"]}
    loras = [n for n in workflow["nodes"] if n["type"] == "SDXLKit_LoraStack"]
    inference = next(n for n in workflow["nodes"] if n["type"] == INFERENCE)
    inference["inputs"].append({"name": "seed", "type": "INT", "widget": {"name": "seed"}, "link": 90})
    workflow["nodes"].append({"id": 60, "type": "PrimitiveNode", "pos": [0, 0], "size": [1, 1], "flags": {}, "order": 9,
                              "mode": 0, "outputs": [{"name": "INT", "type": "INT", "links": [90]}], "properties": {},
                              "widgets_values": [11, "fixed"]})
    workflow["links"].append([90, 60, 0, inference["id"], 5, "INT"])
    # reroute between the last LoRA node and the Inference node
    lora_link = next(link for link in workflow["links"] if link[3] == inference["id"] and link[5] == "SDXLKIT_LORA_STACK")
    workflow["nodes"].append({"id": 61, "type": "Reroute", "pos": [0, 0], "size": [1, 1], "flags": {}, "order": 9, "mode": 0,
                              "inputs": [{"name": "", "type": "*", "link": 91}],
                              "outputs": [{"name": "", "type": "SDXLKIT_LORA_STACK", "links": [lora_link[0]]}],
                              "properties": {}})
    workflow["links"].append([91, lora_link[1], 0, 61, 0, "SDXLKIT_LORA_STACK"])
    lora_link[1] = 61
    # a bypassed third LoRA between the two, and a muted one feeding nothing that matters
    extra = json.loads(json.dumps(loras[1])) | {"id": 62, "mode": 4, "widgets_values": ["c", 1.0, "both"]}
    extra["inputs"][0]["link"] = 92
    workflow["nodes"].append(extra)
    first_to_second = next(link for link in workflow["links"] if link[3] == loras[1]["id"])
    workflow["links"].append([92, first_to_second[1], 0, 62, 0, "SDXLKIT_LORA_STACK"])
    first_to_second[1] = 62
    workflow["nodes"].append(json.loads(json.dumps(loras[0])) | {"id": 63, "mode": 2})
    workflow["nodes"].append({"id": 64, "type": "Note", "pos": [0, 0], "size": [1, 1], "flags": {}, "order": 9, "mode": 0,
                              "properties": {}, "widgets_values": ["hello"]})
    assert nodes  # the original nodes are still there
    assert graph_to_tasks(workflow) == graph_to_tasks(tasks_to_workflow(task))


def _as_subgraph(workflow: dict, inner_ids: set[int], name: str) -> dict:
    """The workflow with the nodes `inner_ids` moved into a subgraph, as frontend 1.27 saves it (version 1 link
    objects inside; the subgraph's input node -10 and output node -20)."""
    sub_id = str(uuid.uuid4())
    inner = [n for n in workflow["nodes"] if n["id"] in inner_ids]
    outer = [n for n in workflow["nodes"] if n["id"] not in inner_ids]
    instance = {"id": 99, "type": sub_id, "pos": [0, 0], "size": [200, 100], "flags": {}, "order": 0, "mode": 0,
                "properties": {}, "inputs": [], "outputs": [], "widgets_values": []}
    sub = {"id": sub_id, "version": 1, "revision": 0, "name": name, "state": {}, "nodes": inner, "links": [],
           "inputNode": {"id": -10, "bounding": [0, 0, 10, 10]}, "outputNode": {"id": -20, "bounding": [0, 0, 10, 10]},
           "inputs": [], "outputs": [], "widgets": [], "config": {}, "extra": {}, "groups": []}
    links = []
    for link_id, origin, origin_slot, target, target_slot, kind in workflow["links"]:
        as_object = {"id": link_id, "origin_id": origin, "origin_slot": origin_slot, "target_id": target,
                     "target_slot": target_slot, "type": kind}
        if origin in inner_ids and target in inner_ids:
            sub["links"].append(as_object)
        elif origin in inner_ids:  # leaves the subgraph through a new output
            sub["outputs"].append({"id": str(uuid.uuid4()), "name": kind.lower(), "type": kind, "linkIds": [link_id]})
            sub["links"].append(as_object | {"target_id": -20, "target_slot": len(sub["outputs"]) - 1})
            instance["outputs"].append({"name": kind.lower(), "type": kind, "links": [link_id + 1000]})
            links.append([link_id + 1000, 99, len(instance["outputs"]) - 1, target, target_slot, kind])
            next(i for i in next(n for n in outer if n["id"] == target)["inputs"] if i["link"] == link_id)["link"] = link_id + 1000
        elif target in inner_ids:  # enters through a new input
            sub["inputs"].append({"id": str(uuid.uuid4()), "name": kind.lower(), "type": kind, "linkIds": [link_id]})
            sub["links"].append(as_object | {"origin_id": -10, "origin_slot": len(sub["inputs"]) - 1})
            instance["inputs"].append({"name": kind.lower(), "type": kind, "link": link_id + 1000})
            links.append([link_id + 1000, origin, origin_slot, 99, len(instance["inputs"]) - 1, kind])
        else:
            links.append([link_id, origin, origin_slot, target, target_slot, kind])
    return workflow | {"nodes": [*outer, instance], "links": links, "definitions": {"subgraphs": [sub]}}


def test_graphs_with_subgraphs_convert_as_the_frontend_flattens_them(tmp_path):
    task = TASK | {"inputs": {"seedImage": data_uri(make_image())}, "strength": 0.5,
                   "lora": [{"model": "a", "weight": 0.5}, {"model": "b"}]}
    workflow = tasks_to_workflow(task, opts(tmp_path))
    ids = {n["type"]: n["id"] for n in workflow["nodes"]}
    loras = {n["id"] for n in workflow["nodes"] if n["type"] == "SDXLKit_LoraStack"}
    for inner in ({ids["SDXLKit_Loader"], *loras}, {ids[INFERENCE], ids["SDXLKit_Denoise"]}, {ids["SDXLKit_Save"]}):
        nested = _as_subgraph(json.loads(json.dumps(workflow)), inner, "part of the graph")
        assert graph_to_tasks(nested, opts(tmp_path)) == [task]
    muted = _as_subgraph(json.loads(json.dumps(workflow)), loras, "loras")
    muted["nodes"][-1]["mode"] = 2
    assert "lora" not in graph_to_tasks(muted, opts(tmp_path))[0]
    muted["nodes"][-1]["mode"] = 4
    with pytest.raises(GraphConversionError, match="bypassed; unpack it"):
        graph_to_tasks(muted, opts(tmp_path))


def _promoted_prompt_subgraph(prompts: list[str], compressed: bool = False) -> dict:
    """The Inference node in a subgraph whose positive_prompt is promoted to the instance, one instance per prompt,
    as frontend 1.27 saves it: instances keep no widget values (SubgraphNode sets no serialize_widgets), the inner
    node holds the value of the instance serialized last. `compressed`: as graphToPrompt returns it, unlinked
    widget inputs left out of each node's inputs."""
    workflow = tasks_to_workflow(TASK)
    nodes = {n["type"]: n for n in workflow["nodes"]}
    loader, inference, save = nodes["SDXLKit_Loader"], nodes[INFERENCE], nodes["SDXLKit_Save"]
    inner = json.loads(json.dumps(inference)) | {"id": 1, "outputs": [
        {"name": "images", "type": "IMAGE", "links": [3]}, {"name": "task", "type": "STRING", "links": [4]}]}
    inner["widgets_values"][0] = prompts[-1]
    inner["inputs"] = [{"name": "model", "type": "SDXLKIT_MODEL", "link": 2},
                       {"name": "positive_prompt", "type": "STRING", "widget": {"name": "positive_prompt"}, "link": 1}]
    sub_id = str(uuid.uuid4())
    sub = {"id": sub_id, "version": 1, "revision": 0, "name": "generate", "state": {}, "config": {}, "extra": {},
           "groups": [], "widgets": [], "nodes": [inner],
           "inputNode": {"id": -10, "bounding": [0, 0, 1, 1]}, "outputNode": {"id": -20, "bounding": [0, 0, 1, 1]},
           "inputs": [{"id": "p", "name": "positive_prompt", "type": "STRING", "linkIds": [1],
                       "widget": {"name": "positive_prompt"}},
                      {"id": "m", "name": "model", "type": "SDXLKIT_MODEL", "linkIds": [2]}],
           "outputs": [{"id": "i", "name": "images", "type": "IMAGE", "linkIds": [3]},
                       {"id": "t", "name": "task", "type": "STRING", "linkIds": [4]}],
           "links": [{"id": 1, "origin_id": -10, "origin_slot": 0, "target_id": 1, "target_slot": 1, "type": "STRING"},
                     {"id": 2, "origin_id": -10, "origin_slot": 1, "target_id": 1, "target_slot": 0,
                      "type": "SDXLKIT_MODEL"},
                     {"id": 3, "origin_id": 1, "origin_slot": 0, "target_id": -20, "target_slot": 0, "type": "IMAGE"},
                     {"id": 4, "origin_id": 1, "origin_slot": 1, "target_id": -20, "target_slot": 1, "type": "STRING"}]}
    nodes, links = [loader | {"id": 10}], []
    for i in range(len(prompts)):
        instance, saver, first = 30 + i, 20 + i, 100 + 3 * i
        promoted = [] if compressed else [
            {"name": "positive_prompt", "type": "STRING", "widget": {"name": "positive_prompt"}, "link": None}]
        nodes.append({"id": instance, "type": sub_id, "pos": [0, 0], "size": [1, 1], "flags": {}, "order": 1,
                      "mode": 0, "properties": {}, "inputs": [*promoted, {"name": "model", "type": "SDXLKIT_MODEL",
                                                                           "link": first}]})
        nodes.append(json.loads(json.dumps(save)) | {"id": saver, "inputs": [
            {"name": "images", "type": "IMAGE", "link": first + 1}, {"name": "task", "type": "STRING", "link": first + 2}]})
        links += [[first, 10, 0, instance, len(promoted), "SDXLKIT_MODEL"], [first + 1, instance, 0, saver, 0, "IMAGE"],
                  [first + 2, instance, 1, saver, 1, "STRING"]]
    return workflow | {"nodes": nodes, "links": links, "definitions": {"subgraphs": [sub]}}


@pytest.mark.parametrize("compressed", [False, True])
def test_a_promoted_widget_reaches_the_node_inside_its_subgraph(compressed):
    workflow = _promoted_prompt_subgraph(["a green boat"], compressed)
    workflow["links"].insert(0, None)  # a hole some saved workflows have
    (task,) = graph_to_tasks(workflow)
    assert task == TASK | {"positivePrompt": "a green boat"}


def test_each_subgraph_instance_takes_its_own_widget_values_from_the_queued_prompt():
    workflow = _promoted_prompt_subgraph(["a green boat", "a blue boat"])
    saved = graph_to_tasks(workflow)  # what the saved workflow says: the definition's one value
    assert [t["positivePrompt"] for t in saved] == ["a blue boat", "a blue boat"]
    queued = {f"{30 + i}:1": {"class_type": INFERENCE, "inputs": {"positive_prompt": prompt, "model": ["10", 0]}}
              for i, prompt in enumerate(["a green boat", "a blue boat"])}
    assert [t["positivePrompt"] for t in graph_to_tasks(workflow, prompt=queued)] == ["a green boat", "a blue boat"]


def test_an_image_comfyui_saved_converts_each_subgraph_instance_with_its_own_values(tmp_path, capsys):
    """ComfyUI's saved images carry the workflow and the queued prompt: `convert` reads the instances' values
    from the prompt, and a prompt that is not JSON leaves the workflow's own values."""
    from PIL.PngImagePlugin import PngInfo

    workflow = _promoted_prompt_subgraph(["a green boat", "a blue boat"])
    queued = {f"{30 + i}:1": {"class_type": INFERENCE, "inputs": {"positive_prompt": prompt, "model": ["10", 0]}}
              for i, prompt in enumerate(["a green boat", "a blue boat"])}
    for name, prompt_text, expected in (("saved.png", json.dumps(queued), ["a green boat", "a blue boat"]),
                                        ("broken.png", "{not json", ["a blue boat", "a blue boat"])):
        info = PngInfo()
        info.add_text("workflow", json.dumps(workflow))
        info.add_text("prompt", prompt_text)
        Image.new("RGB", (8, 8)).save(tmp_path / name, pnginfo=info)
        assert main(["convert", str(tmp_path / name), "--to", "task"]) == 0
        tasks = json.loads(capsys.readouterr().out)
        assert [t["positivePrompt"] for t in tasks] == expected


def test_a_seed_a_browser_would_round_is_warned_about(caplog):
    tasks_to_workflow(TASK | {"seed": 2**53 - 1})
    assert not caplog.records
    workflow = tasks_to_workflow(TASK | {"seed": 2**63 - 1})
    assert "seed 9223372036854775807 is above 2^53 - 1" in caplog.text and "reads it as 9223372036854775808" in caplog.text
    assert graph_to_tasks(workflow)[0]["seed"] == 2**63 - 1  # the file itself keeps it


def test_workflow_widget_count_mismatch_is_explained():
    workflow = tasks_to_workflow(TASK)
    inference = next(n for n in workflow["nodes"] if n["type"] == INFERENCE)
    del inference["widgets_values"][5]
    with pytest.raises(GraphConversionError, match="11 widget values where this version of the node has 12"):
        graph_to_tasks(workflow)


def test_a_linked_widget_from_a_real_node_cannot_be_exported():
    prompt = tasks_to_api(TASK)
    prompt["2"]["inputs"]["seed"] = ["70", 0]
    prompt["70"] = {"class_type": "PrimitiveInt", "inputs": {"value": 5}}
    with pytest.raises(GraphConversionError, match="'seed'.*linked"):
        graph_to_tasks(prompt)


def test_detect_format():
    assert detect_format(TASK) == detect_format([TASK]) == "task"
    assert detect_format(tasks_to_api(TASK)) == "api"
    assert detect_format(tasks_to_workflow(TASK)) == "workflow"
    with pytest.raises(GraphConversionError):
        detect_format({"hello": 1})
    with pytest.raises(GraphConversionError, match="no SDXL Inference node"):
        graph_to_tasks({"1": {"class_type": "Note", "inputs": {}}})


# --- CLI ---

def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_converts_task_workflow_api_and_png(tmp_path, capsys):
    (tmp_path / "input").mkdir()
    make_image(seed=9).save(tmp_path / "seed.png")
    task = TASK | {"inputs": {"seedImage": "seed.png"}, "strength": 0.4}
    (tmp_path / "task.json").write_text(json.dumps(task))
    code, _, err = run_cli(capsys, "convert", tmp_path / "task.json", "--to", "workflow", "--input-dir", tmp_path / "input",
                           "--out", tmp_path / "wf.json")
    assert code == 0, err
    check_workflow(json.loads((tmp_path / "wf.json").read_text()))
    code, out, err = run_cli(capsys, "convert", tmp_path / "wf.json", "--to", "api", "--input-dir", tmp_path / "input")
    assert code == 0, err and detect_format(json.loads(out)) == "api"
    (tmp_path / "api.json").write_text(out)
    code, out, err = run_cli(capsys, "convert", tmp_path / "api.json", "--to", "task", "--input-dir", tmp_path / "input",
                             "--images", "file")
    assert code == 0, err
    result = json.loads(out)
    assert result == task  # the image as the task named it, though --images file
    wf = json.loads((tmp_path / "wf.json").read_text())
    for node in wf["nodes"]:
        node["properties"].pop("taskImage", None)
    (tmp_path / "wf.json").write_text(json.dumps(wf))
    code, out, err = run_cli(capsys, "convert", tmp_path / "wf.json", "--to", "task", "--input-dir", tmp_path / "input",
                             "--images", "file")
    result = json.loads(out)
    assert result["strength"] == 0.4 and Path(result["inputs"]["seedImage"]).parent == tmp_path / "input"
    assert pixels(result["inputs"]["seedImage"], False) == pixels(str(tmp_path / "seed.png"), False)
    png = encode_with_metadata(make_image(), "PNG", 95, {TASK_KEY: json.dumps(TASK)})
    (tmp_path / "image.png").write_bytes(png)
    code, out, err = run_cli(capsys, "convert", tmp_path / "image.png", "--to", "api")
    assert code == 0, err and node_of(json.loads(out), INFERENCE)[1]["_meta"]["taskUUID"] == UUID


def test_cli_convert_errors(tmp_path, capsys):
    (tmp_path / "task.json").write_text(json.dumps(TASK | {"ttl": 60}))
    code, _, err = run_cli(capsys, "convert", tmp_path / "task.json", "--to", "workflow")
    assert code == 2 and "$.ttl: not supported yet" in err  # as `sdxlkit validate` refuses it
    (tmp_path / "bad.png").write_bytes(encode(make_image()))
    code, _, err = run_cli(capsys, "convert", tmp_path / "bad.png", "--to", "task")
    assert code == 1 and "carries no task" in err
    (tmp_path / "task.json").write_text(json.dumps(TASK | {"inputs": {"seedImage": data_uri(make_image())}}))
    code, _, err = run_cli(capsys, "convert", tmp_path / "task.json", "--to", "api")
    assert code == 1 and "--input-dir" in err


def test_mapping_sockets_and_widgets_are_distinct_names():
    for mapping in MAPPINGS.values():
        names = [i.name for i in mapping.inputs]
        assert len(names) == len(set(names)), mapping.class_type
        assert all(isinstance(i, (Socket, Widget)) for i in mapping.inputs)


def test_graphs_saved_before_the_loader_had_memory_and_compile_still_convert():
    prompt = tasks_to_api(TASK)
    loader = node_of(prompt, "SDXLKit_Loader")[1]
    for name in ("memory", "compile"):
        del loader["inputs"][name]
    assert graph_to_tasks(prompt) == [TASK]
    workflow = tasks_to_workflow(TASK)
    (node,) = [n for n in workflow["nodes"] if n["type"] == "SDXLKit_Loader"]
    node["widgets_values"] = node["widgets_values"][:3]
    assert graph_to_tasks(workflow) == [TASK]
