"""The headless routes hardened, inside a real ComfyUI (COMFYUI_PATH): every task ends however it leaves the queue,
outbound delivery goes only where it was checked, limits answer 413, NaN and bad widget values are refused before
the queue, inline images are capped and cleaned up, results carry their own taskUUID, one path policy, and a
hypothesis fuzz of both routes. Runs its own server (see test_host.server)."""

import base64
import http.client
import io
import json
import os
import threading
import time
import urllib.request

import pytest
from PIL import Image

from sdxlkit.metadata import read_texts
import test_host
from test_host import COMFYUI_PATH, ROOT, _get, _post_status, _task
from test_route_limits import _Listener

server = test_host.server  # the same ComfyUI set-up, started once for this module

pytestmark = [pytest.mark.host, pytest.mark.skipif(not COMFYUI_PATH, reason="set COMFYUI_PATH to test in a real ComfyUI")]


def _uuid(n: int) -> str:
    return f"{n:08x}-2222-4333-8444-555555555555"


def _idle(url: str, seconds: float = 120) -> dict:
    """The route's status once no task of it is running any more."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = _get(url + "/sdxlkit/v1/status")
        if status["watchers"] == 0 and status["waitingPrompts"] == 0 and _get(url + "/queue")["queue_running"] == []:
            return status
        time.sleep(0.2)
    pytest.fail(f"the route still has watchers: {status}")


def _poll(url: str, uuid: str, seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status, body = _post_status(url + "/sdxlkit/v1", [{"taskType": "getResponse", "taskUUID": uuid}])
        assert status == 200, body
        if "errors" in body or body["data"][0]["status"] != "processing":
            return body
        time.sleep(0.1)
    pytest.fail(f"task {uuid} still processing after {seconds} s")


def _data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _async_tasks(first: int, count: int, **fields) -> list[dict]:
    return [_task(_uuid(first + i), deliveryMethod="async", seed=first + i, **fields) for i in range(count)]


def test_tasks_removed_from_the_queue_end_at_once_and_no_watcher_is_left(server):
    url, _ = server
    _idle(url)
    tasks = _async_tasks(0x100, 8, steps=6)
    status, body = _post_status(url + "/sdxlkit/v1", tasks)
    assert status == 200 and [d["status"] for d in body["data"]] == ["processing"] * 8
    queue = _get(url + "/queue")
    running = {item[3]["sdxlkit_task_uuid"] for item in queue["queue_running"]}
    deleted = sorted(queue["queue_pending"])[-1][1]
    request = urllib.request.Request(url + "/queue", data=json.dumps({"delete": [deleted]}).encode(), method="POST")
    urllib.request.urlopen(request, timeout=10).read()
    urllib.request.urlopen(urllib.request.Request(url + "/queue", data=b'{"clear": true}', method="POST"), timeout=10).read()
    cleared_at = time.monotonic()
    running |= {item[3]["sdxlkit_task_uuid"] for item in _get(url + "/queue")["queue_running"]}  # started meanwhile
    waiting = {t["taskUUID"] for t in tasks} - running
    while waiting and time.monotonic() - cleared_at < 5:  # every task that had not started ends within seconds
        for uuid in list(waiting):
            answer = _post_status(url + "/sdxlkit/v1", [{"taskType": "getResponse", "taskUUID": uuid}])[1]
            if "errors" in answer or answer["data"][0]["status"] != "processing":
                waiting.discard(uuid)
        time.sleep(0.1)
    assert not waiting
    answers = {t["taskUUID"]: _poll(url, t["taskUUID"], 900) for t in tasks}  # the started one runs on a busy CPU
    cancelled = [u for u, b in answers.items() if "errors" in b]
    assert len(cancelled) >= 8 - len(running) - 1  # the running one, and one started meanwhile, may finish
    for uuid in cancelled:
        (error,) = answers[uuid]["errors"]
        assert error["code"] == "taskCancelled" and error["taskUUID"] == uuid and "POST /queue" in error["message"]
    assert all(b["data"][0]["status"] == "success" for u, b in answers.items() if u not in cancelled)
    status = _idle(url, 60)
    assert status["watchers"] == 0 and status["inlineImages"] == 0
    # a cancelled taskUUID may be sent again at once
    again = _post_status(url + "/sdxlkit/v1", [_task(cancelled[0], outputType="base64Data")])
    assert again[0] == 200 and again[1]["data"][0]["taskUUID"] == cancelled[0]


def test_a_sync_request_answers_when_its_tasks_are_cleared(server):
    url, _ = server
    _idle(url)
    answer = {}
    tasks = [_task(_uuid(0x200 + i), seed=i, steps=6) for i in range(5)]
    thread = threading.Thread(target=lambda: answer.update(result=_post_status(url + "/sdxlkit/v1", tasks)))
    thread.start()
    while not _get(url + "/queue")["queue_pending"]:
        time.sleep(0.05)
    urllib.request.urlopen(urllib.request.Request(url + "/queue", data=b'{"clear": true}', method="POST"), timeout=10).read()
    thread.join(120)
    assert not thread.is_alive()
    status, body = answer["result"]
    assert status == 200 and {e["code"] for e in body["errors"]} == {"taskCancelled"}
    assert len(body["errors"]) + len(body.get("data", [])) == 5
    _idle(url)


def test_an_interrupted_task_polls_as_a_task_error(server):
    url, _ = server
    _idle(url)
    (task,) = _async_tasks(0x300, 1, steps=40, width=256, height=256)
    assert _post_status(url + "/sdxlkit/v1", [task])[0] == 200
    while not _get(url + "/queue")["queue_running"]:
        time.sleep(0.05)
    time.sleep(0.5)
    urllib.request.urlopen(urllib.request.Request(url + "/interrupt", data=b"{}", method="POST"), timeout=10).read()
    body = _poll(url, task["taskUUID"])
    (error,) = body["errors"]
    assert error["code"] == "taskInterrupted" and error["taskUUID"] == task["taskUUID"] and error["parameter"] is None
    _idle(url)


def test_webhook_redirects_are_not_followed(server):
    url, _ = server
    target = _Listener()
    redirecting = _Listener(redirect_to=f"http://127.0.0.1:{target.port}/stolen")
    task = _task(_uuid(0x400), webhookURL=f"http://localhost:{redirecting.port}/hook",
                 uploadEndpoint=f"http://localhost:{redirecting.port}/upload", outputType="base64Data")
    status, body = _post_status(url + "/sdxlkit/v1", [task])
    assert status == 200, body
    _idle(url)
    for _ in range(40):
        if len(redirecting.requests) == 2:
            break
        time.sleep(0.25)
    assert [(m, h) for m, _, h, _ in redirecting.requests] == [("POST", f"localhost:{redirecting.port}"),
                                                               ("PUT", f"localhost:{redirecting.port}")]
    assert target.requests == []
    target.close()
    redirecting.close()


@pytest.mark.parametrize("body,parameter", [
    (b'[{"taskType": "imageInference", "taskUUID": "a5111111-2222-4333-8444-555555555555", "model": "civitai:101055@128078", '
     b'"positivePrompt": "a boat", "width": 128, "height": 128, "CFGScale": NaN}]', "CFGScale"),
    (b'[{"taskType": "imageInference", "taskUUID": "a6111111-2222-4333-8444-555555555555", "model": "civitai:101055@128078", '
     b'"positivePrompt": "a boat", "width": 128, "height": 128, "lora": [{"model": "sdxl_watercolor_style", "weight": Infinity}]}]',
     "lora[0].weight"),
    (b'[{"taskType": "imageInference", "taskUUID": "a7111111-2222-4333-8444-555555555555", "model": "civitai:101055@128078", '
     b'"positivePrompt": "a boat", "width": 128, "height": 128, "steps": 1e999}]', "steps"),
])
def test_non_finite_numbers_are_refused_naming_the_field(server, body, parameter):
    url, _ = server
    request = urllib.request.Request(url + "/sdxlkit/v1", data=body, headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    answer = json.loads(info.value.read())
    assert info.value.code == 400 and parameter in {e["parameter"] for e in answer["errors"]}
    assert _get(url + "/queue") == {"queue_running": [], "queue_pending": []}


def _prompt(overrides: dict) -> dict:
    prompt = json.loads((ROOT / "example_api" / "txt2img.api.json").read_text())
    for (node_class, name), value in overrides.items():
        (node,) = [n for n in prompt.values() if n["class_type"] == node_class]
        node["inputs"][name] = value
    return prompt


@pytest.mark.parametrize("node_class,name,value,allowed", [
    ("SDXLKit_Loader", "ckpt_name", "no_such_model.safetensors", "one of"),
    ("SDXLKit_Loader", "precision", "fp64", "'auto'"),
    ("SDXLKit_ImageInference", "scheduler", "Warp drive", "one of"),
    ("SDXLKit_ImageInference", "width", 1001, "a multiple of 8"),
    ("SDXLKit_ImageInference", "positive_prompt", "", "of 2..3000 characters"),
    ("SDXLKit_ImageInference", "cfg_scale", float("nan"), "a finite number"),
    ("SDXLKit_Save", "output_format", "GIF", "'JPG', 'PNG', 'WEBP'"),
])
def test_bad_widget_values_are_refused_by_prompt_before_the_queue(server, node_class, name, value, allowed):
    url, _ = server
    prompt = _prompt({(node_class, name): value})
    request = urllib.request.Request(url + "/prompt", data=json.dumps({"prompt": prompt}).encode(),
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    answer = json.loads(info.value.read())
    details = " ".join(e["details"] for node in answer["node_errors"].values() for e in node["errors"])
    assert info.value.code == 400 and f"{name}: got " in details and allowed in details, details
    assert _get(url + "/queue") == {"queue_running": [], "queue_pending": []}


def test_request_limits_answer_413(server):
    url, _ = server
    status, body = _post_status(url + "/sdxlkit/v1", [_task(_uuid(0x500 + i)) for i in range(101)])
    assert status == 413 and body["errors"][0]["code"] == "requestTooLarge" and "at most 100" in body["errors"][0]["message"]
    host, port = url.removeprefix("http://").split(":")
    for path in ("/sdxlkit/v1", "/sdxlkit/v1/convert"):
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(120 * 2**20))
        connection.endheaders()
        connection.send(b"[" * 1024)
        response = connection.getresponse()
        answer = json.loads(response.read())
        assert response.status == 413 and answer["errors"][0]["code"] == "requestTooLarge"
        connection.close()
    assert _get(url + "/queue") == {"queue_running": [], "queue_pending": []}


def test_huge_images_are_refused_and_inline_images_are_cleaned_up(server):
    url, base = server
    big = _data_uri(Image.new("1", (5000, 5000)))
    status, body = _post_status(url + "/sdxlkit/v1", [_task(_uuid(0x600), inputs={"seedImage": big}, strength=0.5)])
    assert status == 400 and body["errors"][0]["code"] == "invalidImage"
    assert body["errors"][0]["parameter"] == "inputs.seedImage" and body["errors"][0]["taskUUID"] == _uuid(0x600)
    assert "at most 16777216 pixels" in body["errors"][0]["message"]
    seed = _data_uri(Image.new("RGB", (128, 128), (200, 80, 20)))
    tasks = _async_tasks(0x610, 3, inputs={"seedImage": seed}, strength=0.5)
    assert _post_status(url + "/sdxlkit/v1", tasks)[0] == 200
    held = list((base / "input" / "sdxlkit_inline").iterdir())
    assert len(held) <= 1  # three tasks, one image: one file while any of them is queued
    for task in tasks:
        assert _poll(url, task["taskUUID"])["data"][0]["status"] == "success"
    _idle(url)
    assert list((base / "input" / "sdxlkit_inline").iterdir()) == []
    assert not [p for p in (base / "input").iterdir() if p.name.startswith("sdxlkit_") and p.is_file()]


def _embedded_task(url: str, result: dict) -> dict:
    with urllib.request.urlopen(result["imageURL"], timeout=30) as response:
        return json.loads(read_texts(response.read())["sdxlkit_task"])


def test_image_urls_ignore_the_host_header_and_each_task_keeps_its_uuid(server):
    url, base = server
    first, second = _uuid(0x700), _uuid(0x701)
    results = []
    for uuid in (first, second):  # identical tasks: ComfyUI's cache has the first run's images for the second
        request = urllib.request.Request(url + "/sdxlkit/v1", data=json.dumps([_task(uuid, outputFormat="PNG")]).encode(),
                                         headers={"Content-Type": "application/json", "Host": "evil.example:666"})
        with urllib.request.urlopen(request, timeout=300) as response:
            results.append(json.loads(response.read())["data"][0])
    assert all(r["imageURL"].startswith(url + "/view?") for r in results)
    assert [r["taskUUID"] for r in results] == [first, second]
    assert [_embedded_task(url, r)["taskUUID"] for r in results] == [first, second]
    saved = base / "output" / "sdxlkit"
    files = sorted(saved.glob(f"{second}*"))
    assert files and all(f.stat().st_mode & 0o777 == 0o644 for f in files)  # as ComfyUI's SaveImage under umask 022


def test_errors_name_task_and_parameter_and_no_server_path(server):
    url, base = server
    outside = base / "outside.png"
    Image.new("RGB", (64, 64)).save(outside)
    status, body = _post_status(url + "/sdxlkit/v1", [_task(_uuid(0x800)), _task(_uuid(0x801), model="no_such_model")])
    (error,) = body["errors"]
    assert status == 400 and error["code"] == "modelNotFound" and error["parameter"] == "model"
    assert error["taskUUID"] == _uuid(0x801) and str(base) not in error["message"] and "models/checkpoints" in error["message"]
    for ref in (str(outside), str(base / "missing.png")):
        status, body = _post_status(url + "/sdxlkit/v1", [_task(_uuid(0x802)), _task(_uuid(0x803), inputs={"seedImage": ref}, strength=0.5)])
        (error,) = body["errors"]
        assert status == 400 and error["taskUUID"] == _uuid(0x803) and error["parameter"] == "inputs.seedImage"
        assert str(base) not in error["message"] and "input folder" in error["message"]
    status, body = _post_status(url + "/sdxlkit/v1", [_task(_uuid(0x804)), _task(_uuid(0x805), webhookURL="ftp://example.com/x")])
    (error,) = body["errors"]
    assert status == 400 and error["taskUUID"] == _uuid(0x805) and error["parameter"] == "webhookURL"
    assert _get(url + "/queue") == {"queue_running": [], "queue_pending": []}


def test_convert_refuses_links_out_of_the_input_folder(server):
    url, base = server
    secret = base / "secret.png"
    Image.new("RGB", (64, 64), "red").save(secret)
    (base / "input").mkdir(exist_ok=True)
    link = base / "input" / "link_out.png"
    if not link.exists():
        link.symlink_to(secret)
    prompt = json.loads((ROOT / "example_api" / "img2img.api.json").read_text())
    prompt["2"]["inputs"]["image"] = "link_out.png"
    status, body = _post_status(url + "/sdxlkit/v1/convert", {"to": "task", "prompt": prompt})
    assert status == 400 and "not a file in ComfyUI's input folder" in body["errors"][0]["message"]
    assert str(base) not in json.dumps(body)
    status, body = _post_status(url + "/sdxlkit/v1", [_task(_uuid(0x900), inputs={"seedImage": "link_out.png"}, strength=0.5)])
    assert status == 400 and body["errors"][0]["parameter"] == "inputs.seedImage"


def test_status_shows_the_server_side_configuration_read_only(server):
    url, _ = server
    status = _get(url + "/sdxlkit/v1/status")
    assert status["outbound"] is True and status["outboundPrivate"] is True and status["maxTasks"] == 100
    # the old user settings no longer turn anything on or off
    request = urllib.request.Request(url + "/settings/sdxlkit.Outbound.Enabled", data=b"false", method="POST")
    urllib.request.urlopen(request, timeout=10).read()
    assert _get(url + "/sdxlkit/v1/status")["outbound"] is True


# --- fuzz ----------------------------------------------------------------------------------------------------------

def _fuzz_strategy():
    from hypothesis import strategies as st

    leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
                     st.text(max_size=30), st.sampled_from(["NaN", "civitai:101055@128078", "../../etc/passwd", "\u202e\ud7ff"]))
    json_values = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                               max_leaves=12)
    fields = ["taskType", "taskUUID", "model", "positivePrompt", "negativePrompt", "width", "height", "steps", "seed",
              "CFGScale", "scheduler", "strength", "lora", "controlNet", "inputs", "outputType", "outputFormat",
              "deliveryMethod", "numberResults", "clipSkip", "outpaint", "webhookURL"]
    mutated = st.builds(lambda base, changes, drop: {k: v for k, v in (base | changes).items() if k not in drop},
                        st.just(_task("f0000000-2222-4333-8444-555555555555", deliveryMethod="async")),
                        st.dictionaries(st.sampled_from(fields), json_values, max_size=3),
                        st.sets(st.sampled_from(fields), max_size=2))
    task_bodies = st.one_of(mutated, st.lists(st.one_of(mutated, json_values), min_size=0, max_size=3), json_values,
                            st.integers(1, 80).map(lambda depth: [[]] * 0 + json.loads("[" * depth + "]" * depth)))
    convert_bodies = st.one_of(
        st.fixed_dictionaries({"to": st.sampled_from(["task", "workflow", "api", "gif", None]),
                               "tasks": st.one_of(mutated, json_values), "prompt": json_values, "workflow": json_values}),
        json_values)
    return st.one_of(st.tuples(st.just("/sdxlkit/v1"), task_bodies), st.tuples(st.just("/sdxlkit/v1/convert"), convert_bodies))


def test_fuzzed_requests_get_only_4xx_json_errors_or_are_accepted(server):
    from hypothesis import HealthCheck, given, settings

    url, _ = server
    accepted = []

    @settings(max_examples=int(os.environ.get("SDXLKIT_FUZZ_EXAMPLES", "100")), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(_fuzz_strategy())
    def check(case):
        path, body = case
        data = json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")
        before = _get(url + "/queue")
        request = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                status, answer = response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            status, answer = error.code, json.loads(error.read())
        assert status == 200 or 400 <= status < 500, (status, answer, data[:500])
        if status != 200:
            assert answer["errors"] and all(isinstance(e["message"], str) for e in answer["errors"])
            assert "Traceback" not in json.dumps(answer)
            if path == "/sdxlkit/v1":
                assert len(_get(url + "/queue")["queue_pending"]) <= len(before["queue_pending"])
        elif path == "/sdxlkit/v1":
            accepted.extend(d["taskUUID"] for d in answer.get("data", []))

    check()
    _idle(url, 300)
