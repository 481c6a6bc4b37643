"""The pack inside a real ComfyUI: imports cleanly, every node is in /object_info, and Loader -> Inference -> Save runs
through POST /prompt and writes an image with the metadata. Runs only when COMFYUI_PATH points at a ComfyUI checkout;
COMFYUI_PYTHON is its interpreter (default: COMFYUI_PATH/../venv/bin/python)."""

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from sdxlkit.metadata import read_texts

COMFYUI_PATH = os.environ.get("COMFYUI_PATH")
pytestmark = [pytest.mark.host, pytest.mark.skipif(not COMFYUI_PATH, reason="set COMFYUI_PATH to test in a real ComfyUI")]
ROOT = Path(__file__).resolve().parent.parent
NODE_IDS = {"SDXLKit_Loader", "SDXLKit_Inference", "SDXLKit_Save"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _post(url: str, body: dict):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_checkpoint):
    base = tmp_path_factory.mktemp("comfy-base")
    (base / "custom_nodes").mkdir()
    (base / "custom_nodes" / "sdxlkit").symlink_to(ROOT)
    (base / "models" / "checkpoints").mkdir(parents=True)
    (base / "models" / "checkpoints" / "tiny-sdxl.safetensors").symlink_to(tiny_checkpoint)
    python = os.environ.get("COMFYUI_PYTHON", str(Path(COMFYUI_PATH).parent / "venv" / "bin" / "python"))
    port = _free_port()
    log = open(base / "server.log", "w")
    process = subprocess.Popen(
        [python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--disable-auto-launch",
         "--base-directory", str(base)],
        cwd=COMFYUI_PATH, stdout=log, stderr=subprocess.STDOUT, env=os.environ | {"HF_HUB_OFFLINE": "1"},
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


def test_pack_imports_and_registers_every_node(server):
    url, base = server
    log = (base / "server.log").read_text()
    assert "IMPORT FAILED" not in log and "Traceback" not in log, log[-3000:]
    info = _get(url + "/object_info")
    assert NODE_IDS <= set(info)
    inference = info["SDXLKit_Inference"]["input"]["required"]
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
    for _ in range(240):
        history = _get(f"{url}/history/{prompt_id}")
        if prompt_id in history and history[prompt_id]["status"].get("completed") is not None:
            break
        time.sleep(1)
    entry = history[prompt_id]
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[:3000]
    (saved,) = entry["outputs"]["3"]["images"]
    data = (base / "output" / saved["subfolder"] / saved["filename"]).read_bytes()
    texts = read_texts(data)
    assert json.loads(texts["prompt"])["2"]["class_type"] == "SDXLKit_Inference"
    assert "workflow" in texts
    task = json.loads(texts["sdxlkit_task"])
    assert task["scheduler"] == "DPM++ 2M Karras" and task["model"] == "tiny-sdxl.safetensors" and task["seed"] == 3


def test_bad_widget_value_is_reported_before_running(server):
    url, _ = server
    prompt = {"1": {"class_type": "SDXLKit_Loader", "inputs": {"ckpt_name": "tiny-sdxl.safetensors", "vae_name": "(checkpoint's own)", "precision": "auto"}},
              "2": {"class_type": "SDXLKit_Inference", "inputs": {"model": ["1", 0], "width": 4096}}}
    with pytest.raises(urllib.error.HTTPError) as info:
        _post(url + "/prompt", {"prompt": prompt})
    assert info.value.code == 400
