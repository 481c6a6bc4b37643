import asyncio
import inspect
import json

import pytest
import torch

from sdxlkit.graph.option_nodes import NOT_SET
from sdxlkit.task import schema
from sdxlkit.task.model import LOCAL_DEFAULTS

# widget id -> schema field it edits (written here independently of the node code)
WIDGET_FIELDS = {
    "SDXLKit_Inference": {
        "width": "width", "height": "height", "seed": "seed", "steps": "steps", "scheduler": "scheduler",
        "cfg_scale": "CFGScale", "clip_skip": "clipSkip", "number_results": "numberResults", "strength": "strength",
        "mask_margin": "maskMargin", "outpaint_top": "outpaint.top", "outpaint_right": "outpaint.right",
        "outpaint_bottom": "outpaint.bottom", "outpaint_left": "outpaint.left", "outpaint_blur": "outpaint.blur",
    },
    "SDXLKit_ImageInference": {
        "width": "width", "height": "height", "seed": "seed", "steps": "steps", "scheduler": "scheduler",
        "cfg_scale": "CFGScale", "clip_skip": "clipSkip", "number_results": "numberResults"},
    "SDXLKit_Denoise": {"strength": "strength"},
    "SDXLKit_InpaintOptions": {"mask_margin": "maskMargin"},
    "SDXLKit_Outpaint": {"top": "outpaint.top", "right": "outpaint.right", "bottom": "outpaint.bottom",
                         "left": "outpaint.left", "blur": "outpaint.blur"},
    "SDXLKit_Delivery": {"output_type": "outputType", "delivery_method": "deliveryMethod"},
    "SDXLKit_Safety": {"mode": "safety.mode"},
    "SDXLKit_Save": {"output_format": "outputFormat", "output_quality": "outputQuality"},
    "SDXLKit_LoraStack": {"weight": "lora[].weight", "transformer": "lora[].transformer"},
    "SDXLKit_Embeddings": {"weight": "embeddings[].weight"},
    "SDXLKit_ControlNet": {"weight": "controlNet[].weight", "control_mode": "controlNet[].controlMode",
                           "start": "controlNet[].startStepPercentage", "end": "controlNet[].endStepPercentage"},
    "SDXLKit_IPAdapter": {"weight": "ipAdapters[].weight", "weight_type": "ipAdapters[].weightType",
                          "combine_method": "ipAdapters[].combineMethod", "embed_scaling": "ipAdapters[].embedScaling"},
    "SDXLKit_FaceDetailer": {"confidence": "ultralytics.confidence", "mask_padding": "ultralytics.maskPadding",
                             "mask_blur": "ultralytics.maskBlur", "steps": "ultralytics.steps",
                             "cfg_scale": "ultralytics.CFGScale", "strength": "ultralytics.strength"},
    "SDXLKit_PhotoMaker": {"strength": "photoMaker.strength", "style": "photoMaker.style"},
}


def node_classes(pack):
    extension = asyncio.run(pack.comfy_entrypoint())
    return {cls.define_schema().node_id: cls for cls in asyncio.run(extension.get_node_list())}


def test_pack_registers_only_through_entrypoint(pack):
    assert not hasattr(pack, "NODE_CLASS_MAPPINGS")
    assert pack.WEB_DIRECTORY == "./js"
    ids = set(node_classes(pack))
    assert ids == {"SDXLKit_Loader", "SDXLKit_LoraStack", "SDXLKit_ControlNet", "SDXLKit_IPAdapter", "SDXLKit_Inference", "SDXLKit_Save",
                   "SDXLKit_TaskExport", "SDXLKit_ImageInference", "SDXLKit_Denoise", "SDXLKit_InpaintOptions",
                   "SDXLKit_Outpaint", "SDXLKit_Delivery", "SDXLKit_Safety", "SDXLKit_HiresFix", "SDXLKit_FaceDetailer",
                   "SDXLKit_PhotoMaker", "SDXLKit_Refiner", "SDXLKit_Embeddings", "SDXLKit_AcceleratorCache"}


def test_old_inference_node_is_deprecated_and_the_new_one_small(pack):
    classes = node_classes(pack)
    legacy, new = classes["SDXLKit_Inference"].define_schema(), classes["SDXLKit_ImageInference"].define_schema()
    assert legacy.is_deprecated and not new.is_deprecated
    widgets = [i.id for i in new.inputs if not getattr(i, "optional", False) and i.id != "model"]
    assert "strength" not in widgets and "mask_margin" not in widgets and not any("outpaint" in w for w in widgets)
    assert len(widgets) == 11


def test_execute_parameters_match_input_ids(pack):
    for node_id, cls in node_classes(pack).items():
        inputs = [i.id for i in cls.define_schema().inputs]
        params = inspect.signature(cls.execute).parameters
        named = [p for p in params if params[p].kind is not inspect.Parameter.VAR_KEYWORD]
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            assert set(named) <= set(inputs), node_id
        else:
            assert set(named) == set(inputs), node_id


def test_widgets_follow_the_schema(pack):
    classes = node_classes(pack)
    checked = 0
    for node_id, fields in WIDGET_FIELDS.items():
        widgets = {i.id: i for i in classes[node_id].define_schema().inputs}
        for widget_id, path in fields.items():
            spec, widget = schema.field(path), widgets[widget_id]
            if "enum" in spec:  # an option node's optional choice opens with "not set", its default
                unset = [NOT_SET] if widget.options[:1] == [NOT_SET] else []
                assert widget.options == [*unset, *spec["enum"]], widget_id
                assert widget.default == (NOT_SET if unset else spec.get("default")), widget_id
                continue
            assert widget.min == spec.get("minimum"), widget_id
            if "maximum" in spec:
                assert widget.max == spec["maximum"], widget_id
            if "multipleOf" in spec:
                assert widget.step == spec["multipleOf"], widget_id
            expected_default = spec.get("default", LOCAL_DEFAULTS.get(path))
            if expected_default is not None:
                assert widget.default == expected_default, widget_id
            checked += 1
    assert checked >= 15


@pytest.fixture()
def comfy_root(tmp_path, tiny_checkpoint, pack):
    import folder_paths

    folder_paths.set_root(tmp_path)
    (tmp_path / "models" / "checkpoints").mkdir(parents=True)
    (tmp_path / "models" / "checkpoints" / tiny_checkpoint.name).symlink_to(tiny_checkpoint)
    return tmp_path


def inference_values(**overrides):
    values = dict(positive_prompt="a red fox in snow", negative_prompt="", width=128, height=128, seed=7, steps=3,
                  scheduler="Euler", cfg_scale=5.0, clip_skip=0, prompt_weighting="none", number_results=2,
                  strength=0.8, only_masked=False, mask_margin=32, outpaint_top=0, outpaint_right=0,
                  outpaint_bottom=0, outpaint_left=0, outpaint_blur=0)
    return values | overrides


def test_loader_inference_save_chain(comfy_root, pack):
    import comfy.utils
    from PIL import Image

    from sdxlkit.metadata import read_texts

    classes = node_classes(pack)
    (model,) = classes["SDXLKit_Loader"].execute("tiny-sdxl.safetensors", "(checkpoint's own)", "auto").args
    comfy.utils.updates.clear()
    images, task_json = classes["SDXLKit_Inference"].execute(model, **inference_values()).args
    assert images.shape == (2, 128, 128, 3) and images.dtype == torch.float32
    assert 0 <= images.min() and images.max() <= 1 and images.std() > 0.01
    assert not torch.equal(images[0], images[1])  # seeds 7 and 8
    assert comfy.utils.updates[-1] == (6, 6)  # 2 images x 3 steps
    task = json.loads(task_json)
    assert task["model"] == "tiny-sdxl.safetensors" and task["seed"] == 7 and task["numberResults"] == 2
    assert "negativePrompt" not in task and "strength" not in task

    save = classes["SDXLKit_Save"]
    save.hidden = type("Hidden", (), {"prompt": {"1": {"class_type": "SDXLKit_Save"}}, "extra_pnginfo": {"workflow": {"nodes": []}}})
    out = save.execute(images, "test/run", "PNG", 95, task_json)
    files = sorted((comfy_root / "output" / "test").glob("*.png"))
    assert len(files) == 2 and len(out.ui.results) == 2
    texts = read_texts(files[1].read_bytes())
    assert json.loads(texts["prompt"]) == {"1": {"class_type": "SDXLKit_Save"}}
    assert json.loads(texts["workflow"]) == {"nodes": []}
    saved_task = json.loads(texts["sdxlkit_task"])
    assert saved_task["seed"] == 8 and saved_task["outputFormat"] == "PNG" and "numberResults" not in saved_task
    assert Image.open(files[0]).size == (128, 128)


def test_inference_node_img2img_and_interrupt(comfy_root, pack):
    import comfy.model_management

    classes = node_classes(pack)
    (model,) = classes["SDXLKit_Loader"].execute("tiny-sdxl.safetensors", "(checkpoint's own)", "auto").args
    seed_image = torch.rand(1, 128, 128, 3)
    images, task_json = classes["SDXLKit_Inference"].execute(model, seed_image=seed_image, **inference_values(number_results=1, strength=0.5)).args
    task = json.loads(task_json)
    assert task["strength"] == 0.5 and task["inputs"]["seedImage"].startswith("data:image/png;base64,")
    assert images.shape == (1, 128, 128, 3)
    comfy.model_management.interrupted = True
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            classes["SDXLKit_Inference"].execute(model, **inference_values())
    finally:
        comfy.model_management.interrupted = False


def test_mask_without_seed_image_is_a_clear_error(comfy_root, pack):
    import importlib

    TaskValidationError = importlib.import_module(f"{pack.__name__}.sdxlkit.errors").TaskValidationError
    classes = node_classes(pack)
    (model,) = classes["SDXLKit_Loader"].execute("tiny-sdxl.safetensors", "(checkpoint's own)", "auto").args
    with pytest.raises(TaskValidationError, match="seedImage"):
        classes["SDXLKit_Inference"].execute(model, mask_image=torch.ones(1, 128, 128), **inference_values())


def test_comfy_free_memory_also_releases_engine_models(comfy_root, pack):
    import importlib

    import comfy.model_management

    classes = node_classes(pack)
    classes["SDXLKit_Loader"].execute("tiny-sdxl.safetensors", "(checkpoint's own)", "auto")
    cache = importlib.import_module(f"{pack.__name__}.sdxlkit.loading.cache").MODEL_CACHE
    assert cache._models
    comfy.model_management.unload_all_models()
    assert not cache._models and comfy.model_management.unloaded


def test_loader_lists_and_loads_diffusers_folders(comfy_root, pack, tiny_components):
    from sdxlkit.tiny import write_diffusers_folder

    write_diffusers_folder(tiny_components, comfy_root / "models" / "diffusers" / "tiny-diffusers")
    loader = node_classes(pack)["SDXLKit_Loader"]
    options = next(i for i in loader.define_schema().inputs if i.id == "ckpt_name").options
    assert "diffusers/tiny-diffusers" in options and "tiny-sdxl.safetensors" in options
    (model,) = loader.execute("diffusers/tiny-diffusers", "(checkpoint's own)", "auto").args
    assert model.model_ref == "tiny-diffusers"
    assert model.spec.checkpoint.name == "tiny-diffusers"


def test_task_export_shows_and_saves_the_task(pack, tmp_path):
    import folder_paths

    folder_paths.set_root(tmp_path)
    task = json.dumps({"taskType": "imageInference", "taskUUID": "1e4a0b2c-3d4e-4f60-8a7b-9c0d1e2f3a4b", "seed": 3})
    cls = node_classes(pack)["SDXLKit_TaskExport"]
    shown = cls.execute(task, save=False, filename_prefix="t")
    assert json.loads(shown.ui.value) == json.loads(task) and shown.args == (shown.ui.value,)
    assert not list(tmp_path.rglob("*.json"))
    cls.execute(task, save=True, filename_prefix="t")
    (saved,) = tmp_path.rglob("t_*.json")
    assert json.loads(saved.read_text()) == json.loads(task)


def test_lora_and_controlnet_stacks_feed_the_inference_node(comfy_root, pack, adapter_models):
    for kind, path in (("loras", adapter_models.loras["style_kohya"]), ("loras", adapter_models.loras["detail_kohya"]),
                       ("controlnet", adapter_models.controlnets["file"])):
        (comfy_root / "models" / kind).mkdir(parents=True, exist_ok=True)
        (comfy_root / "models" / kind / path.name).symlink_to(path)
    classes = node_classes(pack)
    (model,) = classes["SDXLKit_Loader"].execute("tiny-sdxl.safetensors", "(checkpoint's own)", "auto").args
    (loras,) = classes["SDXLKit_LoraStack"].execute("style_kohya.safetensors", weight=0.9, transformer="both").args
    (loras,) = classes["SDXLKit_LoraStack"].execute("detail_kohya.safetensors", lora_stack=loras, weight=-0.5, transformer="both").args
    guide = torch.rand(1, 96, 96, 3)
    (controls,) = classes["SDXLKit_ControlNet"].execute(guide, "canny_file.safetensors", weight=0.7, control_mode="controlnet",
                                                        start=1, start_unit="step", end=80, end_unit="percent").args
    inference = classes["SDXLKit_Inference"]
    inference.hidden = type("Hidden", (), {"prompt": {"5": {"_meta": {"taskUUID": "0b3e5c2a-7d41-4f0e-9c6b-2f8a1d3e4b5c"}}}, "unique_id": "5"})
    try:
        base, _ = inference.execute(model, **inference_values(number_results=1)).args
        images, task_json = inference.execute(model, lora_stack=loras, control_stack=controls, **inference_values(number_results=1)).args
    finally:
        inference.hidden = None
    task = json.loads(task_json)
    assert task["taskUUID"] == "0b3e5c2a-7d41-4f0e-9c6b-2f8a1d3e4b5c"
    assert task["lora"] == [{"model": "style_kohya.safetensors", "weight": 0.9}, {"model": "detail_kohya.safetensors", "weight": -0.5}]
    (control,) = task["controlNet"]
    assert control["guideImage"].startswith("data:image/png;base64,")
    assert {k: v for k, v in control.items() if k != "guideImage"} == {
        "model": "canny_file.safetensors", "weight": 0.7, "controlMode": "controlnet", "startStep": 1, "endStepPercentage": 80}
    assert (images - base).abs().max() > 1e-3


def test_new_inference_nodes_parse_prompt_weights_and_export_the_rule(pack):
    """ComfyUI users type (word:1.2): a new node reads it (sdEmbeds), says which rule applies, and writes the choice
    into the task explicitly; "none" (plain text) is the task without promptWeighting."""
    from sdxlkit.graph import inference_node
    from sdxlkit.graph.mappings.inference import CORE_WIDGETS

    widget = {i.id: i for i in node_classes(pack)["SDXLKit_ImageInference"].define_schema().inputs}["prompt_weighting"]
    assert widget.default == "sdEmbeds" == next(w.default for w in CORE_WIDGETS if w.name == "prompt_weighting")
    assert "(word:1.2)" in widget.tooltip and "ComfyUI" in widget.tooltip and "literal" in widget.tooltip

    def task(values):
        return inference_node.task_from_widgets(values, model="m", vae=None, seed_image=None, mask_image=None,
                                                task_uuid="u")

    assert task(inference_values(prompt_weighting=widget.default))["promptWeighting"] == "sdEmbeds"
    assert "promptWeighting" not in task(inference_values(prompt_weighting="none"))


def test_conversion_inside_comfyui_finds_models_in_every_folder_comfyui_searches(pack, tmp_path):
    """A checkpoint in a folder added by extra_model_paths.yaml converts both ways and resolves for the task route."""
    import importlib

    import folder_paths
    folder_paths.set_root(tmp_path)
    extra = tmp_path / "elsewhere" / "checkpoints"
    extra.mkdir(parents=True)
    (extra / "far.safetensors").write_bytes(b"")
    (tmp_path / "models" / "checkpoints").mkdir(parents=True)
    (tmp_path / "models" / "checkpoints" / "sd_xl_base_1.0_0.9vae.safetensors").write_bytes(b"")
    folder_paths.add_model_folder_path("checkpoints", str(extra))
    route = importlib.import_module(pack.__name__ + ".nodes.convert_route")
    names = importlib.import_module(pack.__name__ + ".nodes.model_names").ComfyModelNames()
    task = {"taskType": "imageInference", "taskUUID": "2b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e", "model": "far",
            "positivePrompt": "a red boat", "width": 128, "height": 128, "seed": 1}
    prompt = route.convert_body({"to": "api", "tasks": task})["prompt"]
    (loader,) = [n for n in prompt.values() if n["class_type"] == "SDXLKit_Loader"]
    assert loader["inputs"]["ckpt_name"] == "far.safetensors"
    assert route.convert_body({"to": "task", "prompt": prompt})["tasks"] == [task]
    for node in prompt.values():
        node["_meta"] = {}
    assert route.convert_body({"to": "task", "prompt": prompt})["tasks"][0]["model"] == "far.safetensors"
    assert names.resolve("far", "checkpoints") == extra / "far.safetensors"
    assert names.file_name_for("civitai:101055@128078", "checkpoints") == "sd_xl_base_1.0_0.9vae.safetensors"
    assert names.reference_for("sd_xl_base_1.0_0.9vae.safetensors", "checkpoints") == "civitai:101055@128078"
    error = importlib.import_module(pack.__name__ + ".sdxlkit.graph.mapping").GraphConversionError
    with pytest.raises(error, match=f"missing.*{extra}"):
        names.installed_name("missing", "checkpoints")
    # not installed: converts as ComfyUI loads a workflow with a missing model, but does not resolve for a run
    assert names.file_name_for("missing", "checkpoints") == "missing"
    assert names.file_name_for("runware:20@1", "controlnet") == "controlnet-canny-sdxl-1.0.safetensors"
    assert names.reference_for("controlnet-canny-sdxl-1.0.safetensors", "controlnet") == "runware:20@1"
    with pytest.raises(importlib.import_module(pack.__name__ + ".sdxlkit.errors").ModelNotFound, match="missing"):
        names.resolve("missing", "checkpoints")


def test_option_nodes_feed_the_inference_node(comfy_root, pack):
    """SDXL Denoise and SDXL Delivery wired into SDXL Inference: their fields are in the task that runs."""
    classes = node_classes(pack)
    (model,) = classes["SDXLKit_Loader"].execute("tiny-sdxl.safetensors", "(checkpoint's own)", "auto").args
    (denoise,) = classes["SDXLKit_Denoise"].execute(strength=0.35).args
    (delivery,) = classes["SDXLKit_Delivery"].execute(output_type="dataURI", delivery_method="sync", include_cost=False,
                                                        ttl=0, webhook_url="", upload_endpoint="").args
    core = {k: v for k, v in inference_values(number_results=1).items()
            if k not in ("strength", "only_masked", "mask_margin") and not k.startswith("outpaint_")}
    images, task_json = classes["SDXLKit_ImageInference"].execute(
        model, seed_image=torch.rand(1, 128, 128, 3), denoise=denoise, delivery=delivery, **core).args
    task = json.loads(task_json)
    assert task["strength"] == 0.35 and task["outputType"] == "dataURI" and task["includeCost"] is False
    assert "ttl" not in task and "webhookURL" not in task and "outpaint" not in task
    assert images.shape == (1, 128, 128, 3)


def _core_values(**overrides) -> dict:
    return {k: v for k, v in inference_values(**overrides).items()
            if k not in ("strength", "only_masked", "mask_margin") and not k.startswith("outpaint_")}


def test_ip_adapter_stack_feeds_the_inference_node(comfy_root, pack, ip_models):
    for kind, path in (("ipadapter", ip_models.path["runware:55@1"]), ("ipadapter", ip_models.path["runware:55@2"]),
                       ("clip_vision", ip_models.encoder["runware:55@1"]), ("clip_vision", ip_models.encoder["runware:55@2"])):
        (comfy_root / "models" / kind).mkdir(parents=True, exist_ok=True)
        (comfy_root / "models" / kind / path.name).symlink_to(path)
    classes = node_classes(pack)
    node = classes["SDXLKit_IPAdapter"]
    assert node.define_schema().inputs[4].options == ["ip-adapter-plus_sdxl_vit-h.safetensors", "ip-adapter_sdxl.safetensors"]
    (model,) = classes["SDXLKit_Loader"].execute("tiny-sdxl.safetensors", "(checkpoint's own)", "auto").args
    two, one = torch.rand(2, 40, 56, 3), torch.rand(1, 32, 32, 3)
    options = dict(weight_type="normal", combine_method="concat", embed_scaling="kv", weight_composition=1.0)
    (stack,) = node.execute(image=two, image_2=one, ipadapter_name="ip-adapter_sdxl.safetensors",
                            clip_vision_name="CLIP-ViT-bigG-14-laion2B-39B-b160k.safetensors", weight=0.8,
                            **options | {"combine_method": "average"}).args
    (stack,) = node.execute(image=one, ipadapter_name="ip-adapter-plus_sdxl_vit-h.safetensors",
                            clip_vision_name="CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors", weight=0.5,
                            ip_adapter_stack=stack, **options | {"weight_type": "style_and_composition",
                                                                 "weight_composition": 0.3}).args
    assert sorted(stack.images) == ["ipAdapters[0].guideImages[0]", "ipAdapters[0].guideImages[1]",
                                    "ipAdapters[0].guideImages[2]", "ipAdapters[1].guideImages[0]"]
    inference = classes["SDXLKit_ImageInference"]
    base, _ = inference.execute(model, **_core_values(number_results=1)).args
    images, task_json = inference.execute(model, ip_adapter_stack=stack, **_core_values(number_results=1)).args
    first, second = json.loads(task_json)["ipAdapters"]
    assert len(first["guideImages"]) == 3 and all(g.startswith("data:image/png;base64,") for g in first["guideImages"])
    assert {k: v for k, v in first.items() if k != "guideImages"} == {"model": "runware:55@1", "weight": 0.8,
                                                                       "combineMethod": "average"}
    assert {k: v for k, v in second.items() if k != "guideImages"} == {
        "model": "runware:55@2", "weight": 0.5, "weightType": "style_and_composition", "weightComposition": 0.3}
    assert (images - base).abs().max() > 1e-3


def test_ip_adapter_node_refuses_a_file_no_id_maps_to(comfy_root, pack, ip_models):
    (comfy_root / "models" / "ipadapter").mkdir(parents=True)
    (comfy_root / "models" / "ipadapter" / "my_adapter.safetensors").symlink_to(ip_models.path["runware:55@1"])
    node = node_classes(pack)["SDXLKit_IPAdapter"]
    with pytest.raises(pack.sdxlkit.errors.ModelNotFound, match="my_adapter.safetensors is not mapped to an IP-Adapter id.*sdxlkit_models.json"):
        node.execute(image=torch.rand(1, 32, 32, 3), ipadapter_name="my_adapter.safetensors", clip_vision_name="x",
                     weight=1.0, weight_type="normal", combine_method="concat", embed_scaling="kv", weight_composition=1.0)


def test_hires_and_face_nodes_feed_the_inference_node(comfy_root, pack, tiny_upscaler, tiny_yolo):
    """The post-pass nodes pass on their task field and the model file it needs, found where ComfyUI (and Impact
    Pack, for ultralytics/bbox) keeps them; SDXL Inference runs both passes."""
    models = comfy_root / "models"
    (models / "upscale_models").mkdir()
    (models / "upscale_models" / "4x-UltraSharp.pth").symlink_to(tiny_upscaler)
    (models / "ultralytics" / "bbox").mkdir(parents=True)
    (models / "ultralytics" / "bbox" / "face_yolov8m.pt").symlink_to(tiny_yolo)
    classes = node_classes(pack)
    steps = next(i for i in classes["SDXLKit_HiresFix"].define_schema().inputs if i.id == "steps")
    assert steps.max >= 1000  # hiresFix.steps has no maximum: a task with 200 must not be refused at queue time
    (hires,) = classes["SDXLKit_HiresFix"].execute(upscaler="runware:esrgan@ultrasharp", steps=2, strength=0.5).args
    assert hires.fields == {"hiresFix": {"model": "runware:esrgan@ultrasharp", "steps": 2}}
    assert hires.files == {("runware:esrgan@ultrasharp", "upscale_models"): models / "upscale_models" / "4x-UltraSharp.pth"}
    with pytest.raises(pack.sdxlkit.errors.ModelNotFound, match="RealESRGAN_x4plus|runware:504@1"):
        classes["SDXLKit_HiresFix"].execute(upscaler="defaults", steps=5, strength=0.7)  # true = RealESRGAN_x4plus
    (faces,) = classes["SDXLKit_FaceDetailer"].execute(
        confidence=0.95, mask_padding=5, mask_blur=5, inpaint_size=1024, steps=20, cfg_scale=8.0, strength=0.3,
        positive_prompt="a face", negative_prompt="").args
    assert faces.fields == {"ultralytics": {"confidence": 0.95, "positivePrompt": "a face"}}
    assert faces.files == {("face_yolov8m.pt", "ultralytics_bbox"): models / "ultralytics" / "bbox" / "face_yolov8m.pt"}
    (model,) = classes["SDXLKit_Loader"].execute("tiny-sdxl.safetensors", "(checkpoint's own)", "auto").args
    images, task_json = classes["SDXLKit_ImageInference"].execute(
        model, hires_fix=hires, face_detailer=faces, **_core_values(number_results=1, steps=2)).args
    assert images.shape == (1, 128, 128, 3)
    task = json.loads(task_json)
    assert task["hiresFix"] == hires.fields["hiresFix"] and task["ultralytics"] == faces.fields["ultralytics"]


def test_photomaker_node_feeds_the_inference_node(comfy_root, pack, adapter_models, tiny_components):
    from sdxlkit.tiny_photomaker import tiny_photomaker, write_photomaker

    classes = node_classes(pack)
    photos = torch.rand(2, 80, 64, 3)
    with pytest.raises(Exception, match="photomaker-v1.safetensors or photomaker-v1.bin.*models/photomaker"):
        classes["SDXLKit_PhotoMaker"].execute(photos, strength=30, style="Enhance")
    write_photomaker(tiny_photomaker(tiny_components, seed=2)[0], comfy_root / "models" / "photomaker" / "photomaker-v1.bin")
    with pytest.raises(Exception, match="1..4 photos.*holds 5"):
        classes["SDXLKit_PhotoMaker"].execute(torch.rand(5, 8, 8, 3), strength=30, style="Enhance")
    (photomaker,) = classes["SDXLKit_PhotoMaker"].execute(photos, strength=30, style="Enhance").args
    (model,) = classes["SDXLKit_Loader"].execute("tiny-sdxl.safetensors", "(checkpoint's own)", "auto").args
    values = _core_values(number_results=1, positive_prompt="a man img in snow")
    base, _ = classes["SDXLKit_ImageInference"].execute(model, **values).args
    images, task_json = classes["SDXLKit_ImageInference"].execute(model, photomaker=photomaker, **values).args
    task = json.loads(task_json)
    assert task["photoMaker"]["strength"] == 30 and task["photoMaker"]["style"] == "Enhance"
    assert len(task["photoMaker"]["images"]) == 2 and task["photoMaker"]["images"][0].startswith("data:image/png")
    assert (images - base).abs().max() > 1e-3


def test_refiner_and_embeddings_feed_the_inference_node(comfy_root, pack, refiner_models, embedding_files):
    (comfy_root / "models" / "checkpoints" / "refiner.safetensors").symlink_to(refiner_models.single)
    (comfy_root / "models" / "embeddings").symlink_to(embedding_files.folder)
    classes = node_classes(pack)
    (model,) = classes["SDXLKit_Loader"].execute("tiny-sdxl.safetensors", "(checkpoint's own)", "auto").args
    (refiner,) = classes["SDXLKit_Refiner"].execute("refiner.safetensors", start=2, start_unit="step").args
    (stack,) = classes["SDXLKit_Embeddings"].execute("myStyle.safetensors", weight=0.5).args
    (stack,) = classes["SDXLKit_Embeddings"].execute("badHands.safetensors", embedding_stack=stack, weight=-1.0).args
    values = _core_values(number_results=1, positive_prompt="a fox, embedding:myStyle", negative_prompt="badHands")
    inference = classes["SDXLKit_ImageInference"]
    plain, _ = inference.execute(model, **values).args
    images, task_json = inference.execute(model, refiner=refiner, embedding_stack=stack, **values).args
    task = json.loads(task_json)
    assert task["refiner"] == {"model": "refiner.safetensors", "startStep": 2}
    assert task["embeddings"] == [{"model": "myStyle.safetensors", "weight": 0.5}, {"model": "badHands.safetensors", "weight": -1.0}]
    assert images.shape == plain.shape and (images - plain).abs().max() > 1e-3
