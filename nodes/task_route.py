"""POST /sdxlkit/v1: task arrays as the cloud API takes them, run through ComfyUI's own queue.

Every task is validated, checked as the engine will run it (models, images, sizes) and converted to a prompt that
ComfyUI accepts before the first one is queued; that work (image decoding included) runs off the event loop.
deliveryMethod sync waits and answers {"data": [...]}; async answers at once and the task is polled with
{"taskType": "getResponse", "taskUUID": ...}. Each queued task has one watcher that ends when its prompt leaves
ComfyUI's queue by any route (see comfy_queue), after delivering to webhookURL / uploadEndpoint when the server's
configuration allows it. GET /sdxlkit/v1/status answers the server's limits and how many watchers are alive.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from urllib.parse import urlencode

from PIL import Image

from ..sdxlkit.api.body import read_body
from ..sdxlkit.api.inline_images import InlineImages
from ..sdxlkit.api.jobs import Jobs, response_for
from ..sdxlkit.api.outbound import send
from ..sdxlkit.api.service import Admitted, TaskRefused, admit, engine_view, is_async, read_request, results
from ..sdxlkit.errors import SdxlKitError
from ..sdxlkit.graph.convert import tasks_to_api
from ..sdxlkit.runner import RunOptions, prepare
from ..sdxlkit.safety import checker_for, nsfw_flags
from . import comfy_queue, host
from .convert_route import options
from .settings import error_json, route_config

ROUTE = "/sdxlkit/v1"
JOBS = Jobs()
_watchers: set[asyncio.Task] = set()  # keeps running watchers referenced until they finish
_inline: InlineImages | None = None
DELIVERY_TIMEOUT = 30


def _inline_images(max_bytes: int) -> InlineImages:
    global _inline
    if _inline is None:
        _inline = InlineImages(options().input_dir, max_bytes)
    _inline.max_bytes = max_bytes
    return _inline


def _check(task) -> None:
    folders = options()
    prepare(task, RunOptions(models_dir=folders.models_dir, device="cpu", base_dir=folders.input_dir,
                             resolve=folders.model_names.resolve))


def _json(body: dict, status: int = 200):
    from aiohttp import web

    return web.json_response(body, status=status)


def _base_url(public_url: str | None) -> str:
    """Where clients reach this server: the configured public URL, else the address it listens on (never a header
    of the request)."""
    if public_url:
        return public_url
    import server
    from comfy.cli_args import args

    instance = server.PromptServer.instance
    host = getattr(instance, "address", None) or args.listen.split(",")[0]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if args.tls_keyfile and args.tls_certfile else "http"
    return f"{scheme}://{host}:{getattr(instance, 'port', args.port)}"


def _save_node(prompt: dict) -> str:
    return next(node_id for node_id, node in prompt.items() if node["class_type"] == "SDXLKit_Save")


def _prompt_for(entry: Admitted) -> dict:
    """The task's prompt; its files are named by the taskUUID, which also makes ComfyUI run the Save node again for
    a task whose images it has cached from an identical earlier task, so the files carry this task's taskUUID."""
    prompt = tasks_to_api(engine_view(entry.task).data, options())
    prompt[_save_node(prompt)]["inputs"]["filename_prefix"] = f"sdxlkit/{entry.task.uuid}"
    return prompt


async def _deliver(entry: Admitted, items: list[dict], images: list[bytes]) -> None:
    """webhookURL gets {"data": items}; uploadEndpoint gets each image by PUT, each at the addresses checked when
    the task was admitted. Failures are logged, not raised."""
    sends = [("webhookURL", "POST", json.dumps({"data": items}).encode(), "application/json")]
    sends += [("uploadEndpoint", "PUT", data, "application/octet-stream") for data in images]
    for field, method, body, content_type in sends:
        if field in entry.targets:
            try:
                await asyncio.to_thread(send, entry.targets[field], method, body, content_type, DELIVERY_TIMEOUT)
            except Exception as exc:
                logging.warning("sdxlkit: %s for task %s failed: %s", field, entry.task.uuid, exc)


def _collect(entry: Admitted, history: dict, save_node: str, base_url: str) -> tuple[list[dict], list[bytes]]:
    saved = comfy_queue.saved_images(history, save_node)
    images = [path.read_bytes() for path, _ in saved]
    urls = [f"{base_url}/view?{urlencode({k: view[k] for k in ('filename', 'subfolder', 'type')})}" for _, view in saved]
    nsfw = nsfw_flags(checker_for(entry.task.data, options().models_dir), [Image.open(io.BytesIO(data)) for data in images],
                      host.torch_device())
    return results(entry.task, list(zip(images, urls)), nsfw), images


def _task_error(code: str, message: str, task_uuid: str) -> list[dict]:
    return [{"code": code, "message": message, "parameter": None, "taskType": "imageInference", "taskUUID": task_uuid}]


async def _watch(entry: Admitted, prompt_id: str, save_node: str, base_url: str) -> None:
    """Ends the task's job however its prompt ends, so a poll never sees "processing" for a run that is over."""
    uuid = entry.task.uuid
    try:
        history = await comfy_queue.PROMPTS.wait(prompt_id)
        ended = comfy_queue.outcome(history)
        if ended:
            JOBS.fail(uuid, _task_error(*ended, uuid))
            return
        items, images = await asyncio.to_thread(_collect, entry, history, save_node, base_url)
        JOBS.finish(uuid, items)
    except Exception as exc:
        logging.exception("sdxlkit: collecting the results of task %s failed", uuid)
        JOBS.fail(uuid, _task_error("taskFailed", f"the results could not be collected ({type(exc).__name__})", uuid))
        return
    finally:
        if _inline is not None:
            _inline.release(entry.holder)
    if entry.targets:
        await _deliver(entry, items, images)


def _refuse_running(uuids: list) -> None:
    for uuid in uuids:
        if isinstance(uuid, str) and JOBS.active(uuid):
            raise TaskRefused(SdxlKitError(f"taskUUID {uuid} is still processing; give each task its own"), uuid)


async def _admit_and_convert(request_tasks: list[dict], config) -> list[tuple]:
    _refuse_running([task.get("taskUUID") for task in request_tasks])
    store = _inline_images(config.inline_images_bytes)
    admitted = await asyncio.to_thread(admit, request_tasks, _check, config.outbound, options().input_dir, store)
    try:
        queued = []
        for entry in admitted:
            try:
                prompt = await asyncio.to_thread(_prompt_for, entry)
                prompt_id, outputs = await comfy_queue.validate(prompt)
            except SdxlKitError as exc:
                raise TaskRefused(exc, entry.task.uuid) from None
            queued.append((entry, prompt, prompt_id, outputs))
        _refuse_running([entry.task.uuid for entry in admitted])  # sent meanwhile by another request; no await follows
    except BaseException:
        for entry in admitted:
            store.release(entry.holder)
        raise
    return queued


async def post_tasks(request):
    body = None
    data, errors = [], []
    try:
        config = route_config()
        body = await read_body(request, config.max_body_bytes)
        parsed = read_request(body, config.max_tasks)
        for task_uuid in parsed.polls:  # answered before any task is admitted, so a 404 leaves nothing behind
            answer, status = response_for(JOBS.get(task_uuid), task_uuid)
            if status != 200:
                return _json(answer, status)
            data += answer.get("data", [])
            errors += answer.get("errors", [])
        queued = await _admit_and_convert(parsed.tasks, config) if parsed.tasks else []
    except TaskRefused as exc:
        return error_json(exc.error, body, exc.task_uuid)
    except Exception as exc:  # an unexpected one is logged and answered 500 in the API's shape
        return error_json(exc, body)
    base_url = _base_url(config.public_url)
    waits = []
    for entry, prompt, prompt_id, outputs in queued:
        JOBS.start(entry.task.uuid, prompt_id)
        comfy_queue.enqueue(prompt_id, prompt, outputs, {"sdxlkit_task_uuid": entry.task.uuid})
        watcher = asyncio.create_task(_watch(entry, prompt_id, _save_node(prompt), base_url))
        _watchers.add(watcher)
        watcher.add_done_callback(_watchers.discard)
        waits.append((entry.task, watcher))
    failed_runs = False
    for task, watcher in waits:
        if is_async(task):
            data.append({"taskType": "imageInference", "taskUUID": task.uuid, "status": "processing"})
            continue
        await asyncio.shield(watcher)
        job = JOBS.get(task.uuid)
        data += job.data
        errors += job.errors
        failed_runs |= any(e["code"] == "taskFailed" for e in job.errors)
    if errors:  # polls answer a task's errors with 200; a sync request whose runs all failed with 500
        return _json({"errors": errors} | ({"data": data} if data else {}), 500 if failed_runs and not data else 200)
    return _json({"data": data})


async def get_status(request):
    """The server's limits and outbound configuration (read-only), and how much the route holds right now."""
    config = route_config()
    return _json(config.shown() | {"watchers": len(_watchers), "waitingPrompts": comfy_queue.PROMPTS.waiting(),
                                   "inlineImages": _inline.held() if _inline else 0, "jobs": JOBS.counts()})


def register(routes) -> None:
    _inline_images(0).clear()  # what an earlier server process left; no task of this one uses it
    routes.post(ROUTE)(post_tasks)
    routes.get(ROUTE + "/status")(get_status)
