"""The pack inside a real ComfyUI: imports cleanly, every node is in /object_info, and Loader -> Inference -> Save runs
through POST /prompt and writes an image with the metadata. Runs only when COMFYUI_PATH points at a ComfyUI checkout;
COMFYUI_PYTHON is its interpreter (default: COMFYUI_PATH/../venv/bin/python)."""

import json
import os
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from sdxlkit.metadata import read_texts

COMFYUI_PATH = os.environ.get("COMFYUI_PATH")
pytestmark = [pytest.mark.host, pytest.mark.skipif(not COMFYUI_PATH, reason="set COMFYUI_PATH to test in a real ComfyUI")]
ROOT = Path(__file__).resolve().parent.parent
NODE_IDS = {"SDXLKit_Loader", "SDXLKit_LoraStack", "SDXLKit_ControlNet", "SDXLKit_IPAdapter", "SDXLKit_Inference", "SDXLKit_Save",
            "SDXLKit_TaskExport", "SDXLKit_ImageInference", "SDXLKit_Denoise", "SDXLKit_InpaintOptions",
            "SDXLKit_Outpaint", "SDXLKit_Delivery", "SDXLKit_Safety", "SDXLKit_HiresFix", "SDXLKit_FaceDetailer",
            "SDXLKit_PhotoMaker", "SDXLKit_Refiner", "SDXLKit_Embeddings", "SDXLKit_AcceleratorCache"}
# the file names the example workflows use, served by the tiny test models
EXAMPLE_MODELS = {"checkpoints/sd_xl_base_1.0_0.9vae.safetensors": "checkpoint",
                  "loras/sdxl_watercolor_style.safetensors": "style_kohya",
                  "loras/sdxl_detail_tweaker.safetensors": "detail_kohya",
                  "controlnet/controlnet-canny-sdxl-1.0.safetensors": "canny_file",
                  "ipadapter/ip-adapter_sdxl.safetensors": "ip_base", "ipadapter/ip-adapter-plus_sdxl_vit-h.safetensors": "ip_plus",
                  "clip_vision/CLIP-ViT-bigG-14-laion2B-39B-b160k.safetensors": "vit_bigg",
                  "clip_vision/CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors": "vit_h",
                  "upscale_models/RealESRGAN_x4plus.pth": "upscaler", "ultralytics/bbox/face_yolov8m.pt": "face_detector",
                  "checkpoints/sd_xl_refiner_1.0.safetensors": "refiner",
                  "embeddings/sdxl_cinematic_style.safetensors": "myStyle"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _post(url: str, body, timeout: float = 30):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _post_status(url: str, body) -> tuple[int, dict]:
    try:
        return 200, _post(url, body, timeout=300)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_checkpoint, adapter_models, ip_models, tiny_upscaler, tiny_yolo, tiny_components,
           refiner_models, embedding_files):
    from sdxlkit.tiny_photomaker import tiny_photomaker, write_photomaker
    from sdxlkit.tiny_safety import write_tiny_safety_checker

    base = tmp_path_factory.mktemp("comfy-base")
    (base / "custom_nodes").mkdir()
    (base / "custom_nodes" / "sdxlkit").symlink_to(ROOT)
    _link(base / "models" / "checkpoints" / "tiny-sdxl.safetensors", tiny_checkpoint)
    files = {"checkpoint": tiny_checkpoint, **adapter_models.loras, "canny_file": adapter_models.controlnets["file"],
             "ip_base": ip_models.path["runware:55@1"], "ip_plus": ip_models.path["runware:55@2"],
             "vit_bigg": ip_models.encoder["runware:55@1"], "vit_h": ip_models.encoder["runware:55@2"],
             "upscaler": tiny_upscaler, "face_detector": tiny_yolo, "refiner": refiner_models.single,
             **embedding_files.paths}
    for name, source in EXAMPLE_MODELS.items():
        _link(base / "models" / name, files[source])
    write_photomaker(tiny_photomaker(tiny_components, seed=4)[0], base / "models" / "photomaker" / "photomaker-v1.bin")
    write_tiny_safety_checker(base / "models" / "safety_checker" / "stable-diffusion-safety-checker", verdict=True)
    python = os.environ.get("COMFYUI_PYTHON", str(Path(COMFYUI_PATH).parent / "venv" / "bin" / "python"))
    port = _free_port()
    log = open(base / "server.log", "w")
    process = subprocess.Popen(
        [python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--disable-auto-launch",
         "--base-directory", str(base)],
        cwd=COMFYUI_PATH, stdout=log, stderr=subprocess.STDOUT,
        env=os.environ | {"HF_HUB_OFFLINE": "1", "SDXLKIT_OUTBOUND": "1", "SDXLKIT_OUTBOUND_PRIVATE": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            if process.poll() is not None:
                pytest.fail("ComfyUI exited:\n" + (base / "server.log").read_text()[-3000:])
            try:
                _get(url + "/object_info/SDXLKit_Save")
                break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("ComfyUI did not answer in 180 s")
        yield url, base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _wait(url: str, prompt_id: str, seconds: int = 600) -> dict:
    """The /history entry of a prompt once it finished."""
    for _ in range(seconds):
        history = _get(f"{url}/history/{prompt_id}")
        if prompt_id in history and history[prompt_id]["status"].get("completed") is not None:
            return history[prompt_id]
        time.sleep(1)
    pytest.fail(f"prompt {prompt_id} did not finish in {seconds} s")


def test_pack_imports_and_registers_every_node(server):
    url, base = server
    log = (base / "server.log").read_text()
    # ComfyUI's own optional nodes (nodes_audio without torchaudio, ...) may fail to import; the pack must not
    assert "sdxlkit" not in "".join(line for line in log.splitlines() if "IMPORT FAILED" in line), log[-3000:]
    assert not any("sdxlkit" in trace.split("\n\n")[0] for trace in log.split("Traceback")[1:]), log[-3000:]
    info = _get(url + "/object_info")
    assert NODE_IDS <= set(info)
    assert info["SDXLKit_Inference"]["deprecated"] is True and info["SDXLKit_ImageInference"]["deprecated"] is False
    inference = info["SDXLKit_ImageInference"]["input"]["required"]
    assert set(info["SDXLKit_ImageInference"]["input"]["optional"]) == {
        "seed_image", "mask_image", "lora_stack", "control_stack", "denoise", "inpaint", "outpaint", "delivery", "safety",
        "ip_adapter_stack", "photomaker", "hires_fix", "face_detailer", "refiner", "embedding_stack", "accelerator"}
    assert inference["width"][1]["min"] == 128 and inference["width"][1]["step"] == 8
    kind, options = inference["scheduler"][0], inference["scheduler"][1]
    assert len(options["options"] if kind == "COMBO" else kind) == 75


def test_loader_inference_save_through_prompt(server):
    url, base = server
    prompt = {
        "1": {"class_type": "SDXLKit_Loader", "inputs": {"ckpt_name": "tiny-sdxl.safetensors", "vae_name": "(checkpoint's own)", "precision": "auto"}},
        "2": {"class_type": "SDXLKit_Inference", "inputs": {
            "model": ["1", 0], "positive_prompt": "a lighthouse at dusk", "negative_prompt": "", "width": 128, "height": 128,
            "seed": 3, "steps": 3, "scheduler": "DPM++ 2M Karras", "cfg_scale": 5.0, "clip_skip": 0, "prompt_weighting": "none",
            "number_results": 1, "strength": 0.8, "only_masked": False, "mask_margin": 32, "outpaint_top": 0,
            "outpaint_right": 0, "outpaint_bottom": 0, "outpaint_left": 0, "outpaint_blur": 0}},
        "3": {"class_type": "SDXLKit_Save", "inputs": {"images": ["2", 0], "task": ["2", 1], "filename_prefix": "hosttest",
                                                       "output_format": "PNG", "output_quality": 95}},
    }
    prompt_id = _post(url + "/prompt", {"prompt": prompt, "extra_data": {"extra_pnginfo": {"workflow": {"nodes": []}}}})["prompt_id"]
    entry = _wait(url, prompt_id)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    (saved,) = entry["outputs"]["3"]["images"]
    data = (base / "output" / saved["subfolder"] / saved["filename"]).read_bytes()
    texts = read_texts(data)
    assert json.loads(texts["prompt"])["2"]["class_type"] == "SDXLKit_Inference"
    assert "workflow" in texts
    task = json.loads(texts["sdxlkit_task"])
    # the example workflows' checkpoint name links to the same file, so the task names it by the id mapped to it
    assert task["scheduler"] == "DPM++ 2M Karras" and task["model"] == "civitai:101055@128078" and task["seed"] == 3


def test_bad_widget_value_is_reported_before_running(server):
    url, _ = server
    prompt = {"1": {"class_type": "SDXLKit_Loader", "inputs": {"ckpt_name": "tiny-sdxl.safetensors", "vae_name": "(checkpoint's own)", "precision": "auto"}},
              "2": {"class_type": "SDXLKit_Inference", "inputs": {"model": ["1", 0], "width": 4096}}}
    with pytest.raises(urllib.error.HTTPError) as info:
        _post(url + "/prompt", {"prompt": prompt})
    assert info.value.code == 400


def _task(uuid: str, **fields) -> dict:
    return {"taskType": "imageInference", "taskUUID": uuid, "model": "civitai:101055@128078", "positivePrompt": "a lighthouse at dusk",
            "width": 128, "height": 128, "steps": 3, "seed": 5} | fields


def test_route_results_carry_nsfw_content_when_asked(server):
    url, _ = server
    tasks = [_task("c1111111-2222-4333-8444-555555555555", outputType="base64Data", numberResults=2,
                   safety={"checkContent": True}),
             _task("d1111111-2222-4333-8444-555555555555", outputType="base64Data")]
    status, body = _post_status(url + "/sdxlkit/v1", tasks)
    assert status == 200, body
    # the tiny checker in models/safety_checker flags every image (its concept thresholds are below any similarity)
    assert [(d["taskUUID"][0], d.get("NSFWContent")) for d in body["data"]] == [("c", True), ("c", True), ("d", None)]


def _history_size(url: str) -> int:
    return len(_get(url + "/history"))


def _png_data_uri(path: Path) -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def test_task_array_runs_through_the_route_in_sync_mode(server):
    url, _ = server
    guide = _png_data_uri(ROOT / "example_workflows" / "input" / "lighthouse_canny.png")
    tasks = [_task("a1111111-2222-4333-8444-555555555555", outputType="base64Data", outputFormat="PNG", numberResults=2, includeCost=True),
             _task("b1111111-2222-4333-8444-555555555555", outputType="dataURI", outputFormat="WEBP",
                   lora=[{"model": "sdxl_watercolor_style", "weight": 0.7}],
                   controlNet=[{"model": "runware:20@1", "guideImage": guide, "controlMode": "prompt", "endStepPercentage": 70}])]
    status, body = _post_status(url + "/sdxlkit/v1", tasks)
    assert status == 200, body
    data = body["data"]
    assert [(d["taskUUID"][0], d["seed"]) for d in data] == [("a", 5), ("a", 6), ("b", 5)]
    assert data[0]["cost"] == 0 and "cost" not in data[2]
    from PIL import Image
    import base64
    import io

    first = Image.open(io.BytesIO(base64.b64decode(data[0]["imageBase64Data"])))
    assert first.format == "PNG" and first.size == (128, 128)
    assert data[2]["imageDataURI"].startswith("data:image/webp;base64,")
    assert len({d["imageUUID"] for d in data}) == 3


def test_photomaker_task_runs_through_the_route(server):
    url, base = server
    photo = _png_data_uri(ROOT / "example_workflows" / "input" / "harbor.png")
    task = _task("c1111111-2222-4333-8444-555555555555", positivePrompt="a photo of a woman img", outputType="dataURI",
                 photoMaker={"images": [photo, photo], "strength": 20, "style": "Line art"})
    status, body = _post_status(url + "/sdxlkit/v1", [task])
    assert status == 200, body
    assert body["data"][0]["taskUUID"] == task["taskUUID"] and body["data"][0]["imageDataURI"].startswith("data:image/")


def test_async_tasks_are_polled_and_delivered_to_webhook_and_upload_endpoint(server):
    import http.server
    import threading

    received, uploaded = [], []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def do_PUT(self):
            uploaded.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    hook = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    url, _ = server
    uuid = "c1111111-2222-4333-8444-555555555555"
    task = _task(uuid, deliveryMethod="async", webhookURL=f"http://127.0.0.1:{hook.server_port}/hook",
                 uploadEndpoint=f"http://127.0.0.1:{hook.server_port}/upload", outputFormat="PNG")
    status, body = _post_status(url + "/sdxlkit/v1", [task])
    assert status == 200 and body == {"data": [{"taskType": "imageInference", "taskUUID": uuid, "status": "processing"}]}
    for _ in range(120):
        status, body = _post_status(url + "/sdxlkit/v1", [{"taskType": "getResponse", "taskUUID": uuid}])
        if body["data"][0]["status"] != "processing":
            break
        time.sleep(0.5)
    assert status == 200 and body["data"][0]["status"] == "success" and body["data"][0]["seed"] == 5
    assert body["data"][0]["imageURL"].startswith(url + "/view?filename=")
    with urllib.request.urlopen(body["data"][0]["imageURL"], timeout=10) as image:
        served = image.read()
    for _ in range(20):
        if received and uploaded:
            break
        time.sleep(0.25)
    hook.shutdown()
    assert received and received[0]["data"][0]["taskUUID"] == uuid
    assert uploaded == [served] and served.startswith(b"\x89PNG")


@pytest.mark.parametrize("tasks,parameter", [
    ([_task("d1111111-2222-4333-8444-555555555555", width=4096)], "width"),
    ([_task("d2111111-2222-4333-8444-555555555555", model="../../../etc/passwd")], None),
    ([_task("d3111111-2222-4333-8444-555555555555", lora=[{"model": "sdxl_watercolor_style", "weight": 10}])], "lora[0].weight"),
    ([_task("d4111111-2222-4333-8444-555555555555", lora=[{"model": "no_such_lora"}])], None),
    ([_task("d5111111-2222-4333-8444-555555555555", controlNet=[{"model": "runware:20@1", "guideImage": "http://169.254.169.254/x.png"}])], None),
    ([_task("d6111111-2222-4333-8444-555555555555", shell="rm -rf /")], "shell"),
    ([_task("d7111111-2222-4333-8444-555555555555"), _task("d8111111-2222-4333-8444-555555555555", steps=0)], "steps"),
    ([_task("d9111111-2222-4333-8444-555555555555", uploadEndpoint="file:///etc/passwd")], "uploadEndpoint"),
    ([_task("da111111-2222-4333-8444-555555555555", inputs={"seedImage": str(ROOT / "example_workflows" / "input" / "harbor.png")})],
     "inputs.seedImage"),
    ([_task("db111111-2222-4333-8444-555555555555", photoMaker={"images": [str(ROOT / "example_workflows" / "input" / "harbor.png")]},
            positivePrompt="a man img")], "photoMaker.images[0]"),
    ([_task("dc111111-2222-4333-8444-555555555555", photoMaker={"images": [_png_data_uri(ROOT / "example_workflows" / "input" / "harbor.png")]})],
     "positivePrompt"),
    ("not a task array", None),
])
def test_hostile_tasks_are_refused_before_the_queue(server, tasks, parameter):
    url, _ = server
    before = _history_size(url)
    status, body = _post_status(url + "/sdxlkit/v1", tasks)
    assert status == 400, body
    assert body["errors"] and all({"code", "message", "parameter", "taskType", "taskUUID"} <= set(e) for e in body["errors"])
    if parameter:
        assert parameter in {e["parameter"] for e in body["errors"]}
    time.sleep(0.5)
    assert _history_size(url) == before and _get(url + "/queue") == {"queue_running": [], "queue_pending": []}


def test_template_browser_lists_only_the_ui_workflows_with_thumbnails(server):
    from sdxlkit.graph.examples import EXAMPLES

    url, _ = server
    listed = _get(url + "/workflow_templates")
    assert sorted(listed["sdxlkit"]) == sorted(EXAMPLES.values())
    for title in EXAMPLES.values():
        quoted = urllib.parse.quote(title)
        workflow = _get(f"{url}/api/workflow_templates/sdxlkit/{quoted}.json")
        assert workflow["version"] == 0.4 and workflow["nodes"]
        with urllib.request.urlopen(f"{url}/api/workflow_templates/sdxlkit/{quoted}.jpg", timeout=10) as response:
            assert response.read()[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize("name", sorted(p.name.removesuffix(".task.json") for p in (ROOT / "example_tasks").glob("*.task.json")))
def test_shipped_twins_import_and_run_as_shipped(server, name):
    """No file copied into input/: the twin converts through the route and runs through /sdxlkit/v1 as it is."""
    url, _ = server
    twin = json.loads((ROOT / "example_tasks" / f"{name}.task.json").read_text())
    workflow = _post(url + "/sdxlkit/v1/convert", {"to": "workflow", "tasks": twin})["workflow"]
    assert _post(url + "/sdxlkit/v1/convert", {"to": "task", "workflow": workflow})["tasks"] == [twin]
    quick = json.loads(json.dumps(twin)) | {"steps": 2}  # its images and models as shipped, in fewer steps
    for entry in quick.get("controlNet", []):
        entry.pop("startStep", None), entry.pop("endStep", None)
    for post_pass in ("hiresFix", "ultralytics"):
        if isinstance(quick.get(post_pass), dict) and "steps" in quick[post_pass]:
            quick[post_pass]["steps"] = 2
    status, body = _post_status(url + "/sdxlkit/v1", quick)
    assert status == 200 and body["data"] and all(r["taskUUID"] == twin["taskUUID"] for r in body["data"]), body


@pytest.mark.parametrize("name", sorted(p.name.removesuffix(".api.json") for p in (ROOT / "example_api").glob("*.api.json")))
def test_example_workflow_runs_through_prompt(server, name):
    import shutil

    url, base = server
    (base / "input").mkdir(exist_ok=True)
    for asset in (ROOT / "example_workflows" / "input").iterdir():  # the example images, as a user copies them
        shutil.copy(asset, base / "input" / asset.name)
    prompt_id = _post(url + "/prompt", {"prompt": json.loads((ROOT / "example_api" / f"{name}.api.json").read_text())})["prompt_id"]
    entry = _wait(url, prompt_id)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    (save_id,) = [i for i, n in json.loads((ROOT / "example_api" / f"{name}.api.json").read_text()).items() if n["class_type"] == "SDXLKit_Save"]
    saved = entry["outputs"][save_id]["images"][0]
    task = json.loads(read_texts((base / "output" / saved["subfolder"] / saved["filename"]).read_bytes())["sdxlkit_task"])
    twin = json.loads((ROOT / "example_tasks" / f"{name}.task.json").read_text())
    assert task["taskUUID"] == twin["taskUUID"] and task.get("lora") == twin.get("lora")
    assert [{k: v for k, v in c.items() if k != "guideImage"} for c in task.get("controlNet", [])] == \
        [{k: v for k, v in c.items() if k != "guideImage"} for c in twin.get("controlNet", [])]
    assert [{k: v for k, v in c.items() if k != "guideImages"} for c in task.get("ipAdapters", [])] == \
        [{k: v for k, v in c.items() if k != "guideImages"} for c in twin.get("ipAdapters", [])]
    assert [len(c["guideImages"]) for c in task.get("ipAdapters", [])] == [len(c["guideImages"]) for c in twin.get("ipAdapters", [])]
    assert (task.get("hiresFix"), task.get("ultralytics")) == (twin.get("hiresFix"), twin.get("ultralytics"))
    with Image.open(base / "output" / saved["subfolder"] / saved["filename"]) as image:
        assert image.size == (twin["width"], twin["height"])
    assert {k: v for k, v in task.get("photoMaker", {}).items() if k != "images"} == \
        {k: v for k, v in twin.get("photoMaker", {}).items() if k != "images"}
    assert len(task.get("photoMaker", {}).get("images", [])) == len(twin.get("photoMaker", {}).get("images", []))
    assert task.get("refiner") == twin.get("refiner") and task.get("embeddings") == twin.get("embeddings")
