"""POST /sdxlkit/v1: task arrays as the cloud API takes them, run through ComfyUI's own queue.

Every task is validated, checked as the engine will run it (models, images, sizes) and converted to a prompt that
ComfyUI accepts before the first one is queued. deliveryMethod sync waits and answers {"data": [...]}; async
answers at once and the task is polled with {"taskType": "getResponse", "taskUUID": ...}. webhookURL and
uploadEndpoint receive the results when the sdxlkit settings allow it.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlencode

from ..sdxlkit.api.errors import error_response
from ..sdxlkit.api.jobs import Jobs, response_for
from ..sdxlkit.api.service import TaskRefused, admit, engine_view, is_async, read_request, results
from ..sdxlkit.errors import SdxlKitError
from ..sdxlkit.graph.convert import tasks_to_api
from ..sdxlkit.runner import RunOptions, prepare
from . import comfy_queue
from .convert_route import options
from .settings import outbound_policy

ROUTE = "/sdxlkit/v1"
JOBS = Jobs()
_watchers: set[asyncio.Task] = set()  # keeps running watchers referenced until they finish


def _check(task) -> None:
    folders = options()
    prepare(task, RunOptions(models_dir=folders.models_dir, device="cpu", base_dir=folders.input_dir,
                             resolve=folders.model_names.resolve))


def _save_node(prompt: dict) -> str:
    return next(node_id for node_id, node in prompt.items() if node["class_type"] == "SDXLKit_Save")


def _json(body: dict, status: int = 200):
    from aiohttp import web

    return web.json_response(body, status=status)


async def _deliver(task, items: list[dict], images: list[bytes]) -> None:
    """webhookURL gets {"data": items}; uploadEndpoint gets each image by PUT. Failures are logged, not raised."""
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        if task.has("webhookURL"):
            try:
                async with session.post(task.data["webhookURL"], json={"data": items}) as response:
                    response.raise_for_status()
            except Exception as exc:
                logging.warning("sdxlkit: webhook %s for task %s failed: %s", task.data["webhookURL"], task.uuid, exc)
        if task.has("uploadEndpoint"):
            for data in images:
                try:
                    async with session.put(task.data["uploadEndpoint"], data=data) as response:
                        response.raise_for_status()
                except Exception as exc:
                    logging.warning("sdxlkit: upload to %s for task %s failed: %s", task.data["uploadEndpoint"], task.uuid, exc)


async def _collect(task, prompt_id: str, save_node: str, base_url: str) -> tuple[list[dict], list[bytes]]:
    """The run's API results and image bytes, once ComfyUI finished the prompt; its failure as an error."""
    entry = await comfy_queue.wait_for(prompt_id)
    failure = comfy_queue.execution_error(entry)
    if failure:
        raise SdxlKitError(failure)
    saved = comfy_queue.saved_images(entry, save_node)
    images = [path.read_bytes() for path, _ in saved]
    urls = [f"{base_url}/view?{urlencode({k: view[k] for k in ('filename', 'subfolder', 'type')})}" for _, view in saved]
    return results(task, list(zip(images, urls))), images


async def _watch(task, prompt_id: str, save_node: str, base_url: str) -> None:
    """Ends the task's job however the run ends, so a poll never sees "processing" for a run that is over."""
    try:
        items, images = await _collect(task, prompt_id, save_node, base_url)
    except Exception as exc:
        JOBS.fail(task.uuid, error_response(exc, task_uuid=task.uuid)[0]["errors"])
        return
    JOBS.finish(task.uuid, items)
    if task.has("webhookURL") or task.has("uploadEndpoint"):
        await _deliver(task, items, images)


async def _admit_and_convert(request_tasks: list[dict]) -> list[tuple]:
    tasks = admit(request_tasks, _check, outbound_policy(), options().input_dir)
    for task in tasks:
        if JOBS.active(task.uuid):
            raise TaskRefused(SdxlKitError(f"taskUUID {task.uuid} is still processing; give each task its own"), task.uuid)
    queued = []
    for task in tasks:
        try:
            prompt = tasks_to_api(engine_view(task).data, options())
            prompt_id, outputs = await comfy_queue.validate(prompt)
        except SdxlKitError as exc:
            raise TaskRefused(exc, task.uuid) from None
        queued.append((task, prompt, prompt_id, outputs))
    return queued


async def post_tasks(request):
    try:
        body = await request.json()
    except Exception:
        return _json(*error_response(SdxlKitError("the request body is not valid JSON")))
    try:
        parsed = read_request(body)
        queued = await _admit_and_convert(parsed.tasks) if parsed.tasks else []
    except TaskRefused as exc:
        return _json(*error_response(exc.error, body, exc.task_uuid))
    except SdxlKitError as exc:
        return _json(*error_response(exc, body))
    data, errors = [], []
    for task_uuid in parsed.polls:
        answer, status = response_for(JOBS.get(task_uuid), task_uuid)
        if status != 200:
            return _json(answer, status)
        data += answer.get("data", [])
        errors += answer.get("errors", [])
    base_url = f"{request.scheme}://{request.host}"
    waits = []
    for task, prompt, prompt_id, outputs in queued:
        comfy_queue.enqueue(prompt_id, prompt, outputs, {"sdxlkit_task_uuid": task.uuid})
        JOBS.start(task.uuid, prompt_id)
        watcher = asyncio.create_task(_watch(task, prompt_id, _save_node(prompt), base_url))
        _watchers.add(watcher)
        watcher.add_done_callback(_watchers.discard)
        waits.append((task, watcher))
    for task, watcher in waits:
        if is_async(task):
            data.append({"taskType": "imageInference", "taskUUID": task.uuid, "status": "processing"})
            continue
        await watcher
        job = JOBS.get(task.uuid)
        data += job.data
        errors += job.errors
    if errors:
        return _json({"errors": errors} | ({"data": data} if data else {}), 500 if not data else 200)
    return _json({"data": data})


def register(routes) -> None:
    routes.post(ROUTE)(post_tasks)
