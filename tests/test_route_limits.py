"""The headless routes' defences without a server: configuration only from the server side, request limits, strict
JSON numbers, the decoded-pixel cap, the inline image store, pinned outbound delivery, path-free error messages,
written file modes and queue-time widget checks."""

import asyncio
import http.server
import io
import json
import math
import os
import socket
import threading
import time

import pytest
from PIL import Image

from sdxlkit.api.body import RequestTooLarge, parse_json, read_body
from sdxlkit.api.config import RouteConfig, load_config
from sdxlkit.api.errors import ServerBusy, error_response, without_paths
from sdxlkit.api.inline_images import FOLDER, InlineImages
from sdxlkit.api.outbound import CheckedURL, OutboundPolicy, check_outbound, send
from sdxlkit.api.service import admit, read_request
from sdxlkit.errors import ImageInputError, ModelNotFound, SdxlKitError, TaskValidationError
from sdxlkit.images import MAX_PIXELS, load_image
from sdxlkit.results import write_atomic
from sdxlkit.task.validate import validate_tasks

UUID = "1e4a0b2c-3d4e-4f60-8a7b-9c0d1e2f3a4b"


def task(**fields):
    return {"taskType": "imageInference", "taskUUID": UUID, "model": "civitai:101055@128078",
            "positivePrompt": "a small boat", "width": 512, "height": 512} | fields


# --- configuration -------------------------------------------------------------------------------------------------

def test_config_is_read_from_the_environment_over_the_pack_file(tmp_path):
    path = tmp_path / "sdxlkit.json"
    assert load_config({}, path) == RouteConfig()  # no file, no variables: outbound off, 100 tasks, 64 MiB
    path.write_text(json.dumps({"outbound": True, "maxTasks": 5, "publicURL": "https://img.example.com/"}))
    config = load_config({}, path)
    assert config.outbound == OutboundPolicy(enabled=True, allow_private=False)
    assert config.max_tasks == 5 and config.public_url == "https://img.example.com"
    config = load_config({"SDXLKIT_OUTBOUND": "0", "SDXLKIT_MAX_TASKS": "7", "SDXLKIT_MAX_BODY_MB": "2"}, path)
    assert not config.outbound.enabled and config.max_tasks == 7 and config.max_body_bytes == 2 * 2**20


@pytest.mark.parametrize("env,file,message", [
    ({"SDXLKIT_OUTBOUND": "maybe"}, None, "SDXLKIT_OUTBOUND: expected true or false"),
    ({"SDXLKIT_MAX_TASKS": "0"}, None, "SDXLKIT_MAX_TASKS: expected a whole number >= 1"),
    ({"SDXLKIT_PUBLIC_URL": "ftp://x"}, None, "SDXLKIT_PUBLIC_URL: expected an http"),
    ({}, {"outbound": True, "evil": 1}, "must be a JSON object with keys among"),
])
def test_bad_config_values_are_named(tmp_path, env, file, message):
    path = tmp_path / "sdxlkit.json"
    if file is not None:
        path.write_text(json.dumps(file))
    with pytest.raises(SdxlKitError, match=message):
        load_config(env, path)


# --- request bodies ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,path", [
    (b'[{"CFGScale": NaN}]', "$[0].CFGScale"),
    (b'{"lora": [{"weight": Infinity}]}', "$.lora[0].weight"),
    (b'[{"a": 1}, {"strength": -Infinity}]', "$[1].strength"),
    (b'{"CFGScale": 1e999}', "$.CFGScale"),
])
def test_non_finite_numbers_are_refused_naming_the_field(text, path):
    with pytest.raises(TaskValidationError) as info:
        parse_json(text)
    assert [p.path for p in info.value.problems] == [path] and "finite" in info.value.problems[0].message


def test_deep_nesting_broken_unicode_and_bad_json_are_client_errors():
    with pytest.raises(TaskValidationError, match="nested deeper than 64"):
        parse_json(b"[" * 100 + b"]" * 100)
    with pytest.raises(TaskValidationError, match="nested deeper"):
        parse_json(b"[" * 200000)
    with pytest.raises(TaskValidationError, match="not valid Unicode") as info:
        parse_json(b'{"positivePrompt": "a \\ud800 b"}')
    assert info.value.problems[0].path == "$.positivePrompt"
    with pytest.raises(SdxlKitError, match="not valid JSON"):
        parse_json(b'{"width": 5')
    assert parse_json(b'{"w": 1.5, "s": "\\u00e9"}') == {"w": 1.5, "s": "\u00e9"}


def test_tasks_with_non_finite_values_fail_validation_wherever_they_come_from():
    with pytest.raises(TaskValidationError) as info:
        validate_tasks([task(CFGScale=math.nan, lora=[{"model": "x", "weight": math.inf}])])
    paths = {p.path: p.message for p in info.value.problems}
    assert set(paths) == {"$[0].CFGScale", "$[0].lora[0].weight"} and "finite" in paths["$[0].CFGScale"]


class _Content:
    def __init__(self, data: bytes):
        self.data = data

    async def iter_chunked(self, size):
        for start in range(0, len(self.data), size):
            yield self.data[start:start + size]


class _Request:
    def __init__(self, data: bytes, declared: int | None):
        self.content_length, self.content = declared, _Content(data)


def test_bodies_over_the_limit_are_refused_with_413():
    body = json.dumps([task()]).encode()
    assert asyncio.run(read_body(_Request(body, len(body)), len(body))) == [task()]
    for declared in (len(body), None):  # announced, or sent chunked without a length
        with pytest.raises(RequestTooLarge) as info:
            asyncio.run(read_body(_Request(body, declared), len(body) - 1))
        answer, status = error_response(info.value)
        assert status == 413 and answer["errors"][0]["code"] == "requestTooLarge"
        assert "SDXLKIT_MAX_BODY_MB" in answer["errors"][0]["message"]


def test_requests_with_more_tasks_than_allowed_are_refused_with_413():
    assert len(read_request([task()] * 3, 3).tasks) == 3
    with pytest.raises(RequestTooLarge, match="holds 4 tasks; this server takes at most 3") as info:
        read_request([task()] * 4, 3)
    assert error_response(info.value)[1] == 413


# --- images --------------------------------------------------------------------------------------------------------

def _png(width: int, height: int, mode: str = "1") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_images_over_the_pixel_cap_are_refused_from_the_header_before_decoding(monkeypatch, tmp_path):
    from PIL import PngImagePlugin

    decoded = []
    original = PngImagePlugin.PngImageFile.load
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", lambda self: decoded.append(self.size) or original(self))
    path = tmp_path / "big.png"
    path.write_bytes(_png(4096, 4097))
    with pytest.raises(ImageInputError, match=r"inputs.seedImage: the image is 4096x4097; input images may have at most 16777216"):
        load_image(str(path), "inputs.seedImage")
    assert decoded == [] and MAX_PIXELS == 4096 * 4096
    path.write_bytes(_png(4096, 4096))
    assert load_image(str(path), "inputs.seedImage").size == (4096, 4096) and set(decoded) == {(4096, 4096)}


def test_inline_images_are_deduplicated_held_released_and_bounded(tmp_path):
    (tmp_path / FOLDER).mkdir()
    (tmp_path / FOLDER / "left-by-an-earlier-process.png").write_bytes(b"x")
    store = InlineImages(tmp_path, max_bytes=10_000)
    store.clear()
    assert not (tmp_path / FOLDER).exists()
    red, blue = Image.new("RGB", (64, 64), "red"), Image.new("RGB", (64, 64), "blue")
    first, again = store.hold("a", red), store.hold("b", red.copy())
    assert first == again and first.startswith(FOLDER + "/") and len(list((tmp_path / FOLDER).iterdir())) == 1
    assert Image.open(tmp_path / first).convert("RGB").tobytes() == red.tobytes()
    other = store.hold("b", blue)
    store.release("a")
    assert (tmp_path / first).is_file() and store.held() == 2  # still held by "b"
    store.release("b")
    assert store.held() == 0 and not (tmp_path / first).exists() and not (tmp_path / other).exists()
    noise = Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3))  # ~12 KB as PNG: over the bound
    with pytest.raises(ServerBusy, match="SDXLKIT_INLINE_IMAGES_MB"):
        store.hold("c", noise)
    assert error_response(ServerBusy("busy"))[1] == 503 and store.held() == 0


def test_admission_lets_go_of_held_images_when_a_later_task_is_refused(tmp_path):
    import base64

    uri = "data:image/png;base64," + base64.b64encode(_png(64, 64, "RGB")).decode()
    store = InlineImages(tmp_path, max_bytes=2**20)
    second = dict(task(inputs={"seedImage": uri}, strength=0.5), taskUUID="2e4a0b2c-3d4e-4f60-8a7b-9c0d1e2f3a4b")

    def check(t):
        if t.uuid == second["taskUUID"]:
            raise ModelNotFound("model 'civitai:101055@128078' not found (looked for /srv/models/checkpoints/x)")

    with pytest.raises(SdxlKitError) as info:
        admit([task(inputs={"seedImage": uri}, strength=0.5), second], check, OutboundPolicy(), tmp_path, store)
    assert store.held() == 0 and not any((tmp_path / FOLDER).iterdir())
    assert info.value.error.parameter == "model"  # model errors name their field
    (entry,) = admit([task(inputs={"seedImage": uri}, strength=0.5)], lambda t: None, OutboundPolicy(), tmp_path, store)
    assert entry.task.data["inputs"]["seedImage"].startswith(FOLDER + "/") and store.held() == 1


# --- errors --------------------------------------------------------------------------------------------------------

def test_error_messages_name_folders_by_role_and_hide_other_paths():
    roles = {"/srv/comfy/models": "models", "/srv/comfy/input": "the input folder"}
    text = "model 'x' not found (looked for /srv/comfy/models/checkpoints/x; /etc/x); see https://a.example/b/c"
    assert without_paths(text, roles) == ("model 'x' not found (looked for models/checkpoints/x; (a path outside the "
                                          "allowed folders)); see https://a.example/b/c")
    assert without_paths("/srv/comfy/input: gone", roles) == "the input folder: gone"


def test_errors_of_one_task_carry_its_uuid_and_parameter():
    error = TaskValidationError([__import__("sdxlkit.errors").errors.Problem("$.webhookURL", "is off")])
    body, status = error_response(error, [task(), task()], task_uuid=UUID)
    assert status == 400 and body["errors"][0]["taskUUID"] == UUID and body["errors"][0]["parameter"] == "webhookURL"
    missing = ModelNotFound("model 'y' not found")
    missing.parameter = "lora[0].model"
    body, _ = error_response(missing, task_uuid=UUID)
    assert body["errors"][0]["parameter"] == "lora[0].model" and body["errors"][0]["code"] == "modelNotFound"


# --- written files -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_mode_a_normal_write_gives(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        write_atomic(tmp_path / "out.png", b"data")
        with open(tmp_path / "plain", "wb") as f:
            f.write(b"data")
    finally:
        os.umask(previous)
    assert (tmp_path / "out.png").stat().st_mode & 0o777 == mode == (tmp_path / "plain").stat().st_mode & 0o777


# --- outbound delivery ---------------------------------------------------------------------------------------------

class _Listener:
    """A local HTTP server recording requests; `redirect_to` makes it answer 307 there."""

    def __init__(self, redirect_to: str | None = None, silent: bool = False):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((self.command, self.path, self.headers.get("Host"), body))
                if silent:
                    time.sleep(3)
                    return
                self.send_response(307 if redirect_to else 200)
                if redirect_to:
                    self.send_header("Location", redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = _any

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_delivery_follows_no_redirect_and_keeps_the_host_header():
    target = _Listener()
    redirecting = _Listener(redirect_to=f"http://127.0.0.1:{target.port}/stolen")
    try:
        checked = CheckedURL(f"http://hooks.example:{redirecting.port}/hook?x=1", ("127.0.0.1",))
        with pytest.raises(SdxlKitError, match="answered HTTP 307 \\(redirects are not followed\\)"):
            send(checked, "POST", b'{"data": []}', "application/json", timeout=5)
        assert redirecting.requests == [("POST", "/hook?x=1", f"hooks.example:{redirecting.port}", b'{"data": []}')]
        assert target.requests == []
        assert send(CheckedURL(f"http://hooks.example:{target.port}/up", ("127.0.0.1",)), "PUT", b"png", "image/png") == 200
        assert target.requests == [("PUT", "/up", f"hooks.example:{target.port}", b"png")]
    finally:
        target.close()
        redirecting.close()


def test_delivery_connects_only_to_the_address_checked_at_admission(monkeypatch):
    """DNS rebinding: the name resolves to a public address when checked and to 127.0.0.1 afterwards."""
    listener = _Listener()
    answers = iter([[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 0))]])
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: next(answers, [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0))]))
    connected = []

    def create_connection(address, timeout=None, *args, **kwargs):
        connected.append(address)
        raise OSError("unreachable in this test")

    monkeypatch.setattr(socket, "create_connection", create_connection)
    try:
        checked = check_outbound(f"http://rebind.example:{listener.port}/hook", "webhookURL", OutboundPolicy(enabled=True))
        assert checked.addresses == ("93.184.216.34",)
        assert socket.getaddrinfo("rebind.example", None)[0][4][0] == "127.0.0.1"  # the name now points home
        with pytest.raises(SdxlKitError, match="cannot reach rebind.example"):
            send(checked, "POST", b"{}", "application/json", timeout=2)
        assert connected == [("93.184.216.34", listener.port)] and listener.requests == []
    finally:
        listener.close()


def test_delivery_times_out():
    silent = _Listener(silent=True)
    try:
        start = time.monotonic()
        with pytest.raises(SdxlKitError, match="cannot reach"):
            send(CheckedURL(f"http://127.0.0.1:{silent.port}/hook", ("127.0.0.1",)), "POST", b"{}", "application/json", timeout=0.5)
        assert time.monotonic() - start < 2.5
    finally:
        silent.close()


# --- queue-time widget checks --------------------------------------------------------------------------------------

def test_widget_values_are_checked_with_messages_naming_input_and_allowed_values(pack):
    from sdxlkit_pack.nodes.inference import SDXLKitInference
    from sdxlkit_pack.nodes.input_checks import CheckedNode, widget_problems
    from sdxlkit_pack.nodes.loader import SDXLKitLoader
    from sdxlkit_pack.nodes.save import SDXLKitSave

    good = {"width": 1024, "height": 768, "scheduler": "Euler", "cfg_scale": 7.0, "positive_prompt": "a boat", "steps": 20}
    assert SDXLKitInference.validate_inputs(**good) is True
    bad = good | {"width": 1001, "scheduler": "Nope", "cfg_scale": math.nan, "positive_prompt": "", "steps": 1.5}
    message = SDXLKitInference.validate_inputs(**bad)
    assert "width: got 1001; allowed: an integer in 128..2048, a multiple of 8" in message
    assert "scheduler: got 'Nope'; allowed: one of " in message
    assert "cfg_scale: got nan; allowed: a finite number" in message
    assert "positive_prompt: got ''; allowed: a string of 2..3000 characters" in message
    assert "steps: got 1.5; allowed: an integer" in message
    assert "output_format: got 'GIF'; allowed: one of 'JPG', 'PNG', 'WEBP'" in SDXLKitSave.validate_inputs(output_format="GIF")
    loader = SDXLKitLoader.validate_inputs(precision="fp64", ckpt_name="missing.safetensors")
    assert "precision: got 'fp64'; allowed: one of 'auto'" in loader and "ckpt_name: got 'missing.safetensors'" in loader
    assert "compile: not with memory lowvram" in SDXLKitLoader.validate_inputs(memory="lowvram", compile=True)
    assert SDXLKitLoader.validate_inputs(memory="lowvram", compile=False) is True
    assert issubclass(SDXLKitLoader, CheckedNode)
    assert widget_problems(SDXLKitSave.define_schema().inputs, {"output_quality": math.inf, "filename_prefix": "x"}) == [
        "output_quality: got inf; allowed: an integer"]


def test_option_nodes_check_their_values_except_a_widget_left_not_set(pack):
    from sdxlkit_pack.nodes.options import OPTION_NODE_CLASSES

    nodes = {cls.define_schema().node_id: cls for cls in OPTION_NODE_CLASSES}
    outpaint, delivery, safety = (nodes[f"SDXLKit_{name}"] for name in ("Outpaint", "Delivery", "Safety"))
    sides = {"top": 0, "right": 0, "bottom": 0, "left": 0, "blur": 0}
    assert outpaint.validate_inputs(**sides) is True  # every side not set
    assert "top: got 100; allowed: an integer" in outpaint.validate_inputs(**sides | {"top": 100})
    post = {"output_type": "URL", "delivery_method": "sync", "include_cost": False, "ttl": 0, "webhook_url": "",
            "upload_endpoint": ""}
    assert delivery.validate_inputs(**post) is True
    message = delivery.validate_inputs(**post | {"output_type": "url", "ttl": 30})
    assert "output_type: got 'url'; allowed: one of " in message and "ttl: got 30; allowed: " in message
    assert safety.validate_inputs(check_content=True, mode="not set") is True
    assert "mode: got 'slow'" in safety.validate_inputs(check_content=True, mode="slow")


def test_the_safety_node_leaves_the_decision_to_check_content_until_mode_is_set(pack):
    from sdxlkit.safety.checker import wants_check
    from sdxlkit_pack.nodes.options import OPTION_NODE_CLASSES

    safety = next(cls for cls in OPTION_NODE_CLASSES if cls.define_schema().node_id == "SDXLKit_Safety")
    assert next(i for i in safety.define_schema().inputs if i.id == "mode").default == "not set"

    def checks(**widgets) -> bool:
        return wants_check(safety.execute(**widgets).args[0].fields["safety"])

    assert checks(check_content=True, mode="not set") and not checks(check_content=False, mode="not set")
    assert not checks(check_content=True, mode="none") and checks(check_content=False, mode="fast")


@pytest.mark.parametrize("fields,path", [
    ({"model": "/etc/passwd"}, "$.model"),
    ({"model": "../../secret.safetensors"}, "$.model"),
    ({"vae": "~/vae.safetensors"}, "$.vae"),
    ({"lora": [{"model": "loras/../../x.safetensors"}]}, "$.lora[0].model"),
    ({"refiner": {"model": "/models/sd_xl_refiner_1.0.safetensors"}}, "$.refiner.model"),
    ({"embeddings": [{"model": "ok"}, {"model": "../../x.safetensors"}]}, "$.embeddings[1].model"),
])
def test_model_paths_out_of_the_models_folder_are_refused_before_any_lookup(fields, path, tmp_path):
    looked = []
    with pytest.raises(SdxlKitError) as info:
        admit([task(**fields)], looked.append, OutboundPolicy(), tmp_path)
    assert looked == [] and [p.path for p in info.value.error.problems] == [path]
