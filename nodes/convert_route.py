"""POST /sdxlkit/v1/convert: graph <-> task conversion for the frontend extension (js/sdxlkit.js).

Body: {"to": "task", "workflow": UI workflow, "prompt": API prompt, "images": "data_uri"|"file"} answers
{"tasks": [...]} (the UI workflow is preferred: it keeps each task's taskUUID); {"to": "workflow"|"api",
"tasks": task or array} answers {"workflow": ...} or {"prompt": ...}, with the tasks' images written to ComfyUI's
input folder. Errors come back in the API's shape with status 400.
"""

from __future__ import annotations

from pathlib import Path

from ..sdxlkit.api.errors import error_response
from ..sdxlkit.api.service import check_image_files
from ..sdxlkit.errors import SdxlKitError
from ..sdxlkit.graph.convert import graph_to_tasks, tasks_to_api, tasks_to_workflow
from ..sdxlkit.graph.mapping import ConvertOptions
from ..sdxlkit.task.model import parse_tasks
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
        graph = body.get("workflow") or body.get("prompt")
        if not isinstance(graph, dict):
            raise SdxlKitError("'to': 'task' needs the graph as 'workflow' (UI format) or 'prompt' (API format)")
        return {"tasks": graph_to_tasks(graph, options(body.get("images", "data_uri")))}
    if to in ("workflow", "api"):
        if "tasks" not in body:
            raise SdxlKitError(f"'to': {to!r} needs 'tasks': a task object or an array of tasks")
        folders = options()
        for task in parse_tasks(body["tasks"]):
            check_image_files(task, folders.input_dir)
        if to == "workflow":
            return {"workflow": tasks_to_workflow(body["tasks"], folders)}
        return {"prompt": tasks_to_api(body["tasks"], folders)}
    raise SdxlKitError(f"'to' must be one of task, workflow, api (got {to!r})")


async def post_convert(request):
    from aiohttp import web

    try:
        body = await request.json()
    except Exception:
        answer, status = error_response(SdxlKitError("the request body is not valid JSON"))
        return web.json_response(answer, status=status)
    try:
        return web.json_response(convert_body(body))
    except SdxlKitError as exc:
        answer, status = error_response(exc, body.get("tasks") if isinstance(body, dict) else None)
        return web.json_response(answer, status=status)


def register(routes) -> None:
    routes.post(ROUTE)(post_convert)
