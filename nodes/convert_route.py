"""POST /sdxlkit/v1/convert: graph <-> task conversion for the frontend extension (js/sdxlkit.js).

Body: {"to": "task", "workflow": UI workflow, "prompt": API prompt, "images": "data_uri"|"file"} answers
{"tasks": [...]} (the UI workflow is preferred: it keeps each task's taskUUID; the prompt then gives the widget
values of nodes inside subgraphs, which a workflow keeps once per subgraph, not per instance);
{"to": "workflow"|"api", "tasks": task or array} answers {"workflow": ...} or {"prompt": ...}, with the tasks' images written to ComfyUI's
input folder. Errors come back in the API's shape with status 400 (413 past the body size limit); image file names
follow the task route's path policy (files inside the input folder only, links followed before checking).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..sdxlkit.api.body import read_body
from ..sdxlkit.api.service import confine_images
from ..sdxlkit.errors import SdxlKitError
from ..sdxlkit.graph.convert import graph_to_tasks, tasks_to_api, tasks_to_workflow
from ..sdxlkit.graph.mapping import ConvertOptions
from ..sdxlkit.task.model import parse_tasks
from .settings import error_json, route_config
from .model_names import ComfyModelNames

ROUTE = "/sdxlkit/v1/convert"


def options(images: str = "data_uri") -> ConvertOptions:
    """ComfyUI's folders (models through folder_paths); image file names in tasks are read relative to the input
    folder."""
    import folder_paths

    input_dir = Path(folder_paths.get_input_directory())
    return ConvertOptions(input_dir=input_dir, models_dir=Path(folder_paths.models_dir), images=images,
                          base_dir=input_dir, model_names=ComfyModelNames())


def convert_body(body) -> dict:
    if not isinstance(body, dict):
        raise SdxlKitError("the request body must be a JSON object with 'to' and the document to convert")
    to = body.get("to")
    if to == "task":
        workflow, prompt = body.get("workflow"), body.get("prompt")
        if not isinstance(workflow or prompt, dict):
            raise SdxlKitError("'to': 'task' needs the graph as 'workflow' (UI format) or 'prompt' (API format)")
        queued = prompt if workflow and isinstance(prompt, dict) else None
        return {"tasks": graph_to_tasks(workflow or prompt, options(body.get("images", "data_uri")), queued)}
    if to in ("workflow", "api"):
        if "tasks" not in body:
            raise SdxlKitError(f"'to': {to!r} needs 'tasks': a task object or an array of tasks")
        folders = options()
        tasks = [confine_images(task, folders.input_dir).data for task in parse_tasks(body["tasks"])]
        if to == "workflow":
            return {"workflow": tasks_to_workflow(tasks, folders)}
        return {"prompt": tasks_to_api(tasks, folders)}
    raise SdxlKitError(f"'to' must be one of task, workflow, api (got {to!r})")


async def post_convert(request):
    import asyncio

    from aiohttp import web

    body = None
    try:
        body = await read_body(request, route_config().max_body_bytes)
        return web.json_response(await asyncio.to_thread(convert_body, body))  # decodes and writes images
    except SdxlKitError as exc:
        return error_json(exc, body.get("tasks") if isinstance(body, dict) else None)
    except Exception as exc:  # a graph of unexpected shape: the client's to fix, logged for the operator
        logging.warning("sdxlkit: cannot convert a document", exc_info=exc)
        return error_json(SdxlKitError(f"cannot convert this document ({type(exc).__name__}: {exc})"))


def register(routes) -> None:
    routes.post(ROUTE)(post_convert)
