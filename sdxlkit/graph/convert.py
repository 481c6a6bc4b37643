"""Graph <-> imageInference task conversion: the public functions.

A ComfyUI graph of the pack's nodes and a task JSON are the same thing seen two ways:
- `tasks_to_api` / `tasks_to_workflow`: one task or an array -> an API prompt / a UI workflow (one row of nodes
  per task: Loader, LoadImage/LoadImageMask for the images, LoRA and ControlNet stack chains, option nodes,
  Inference, Save);
- `graph_to_tasks`: an API prompt or UI workflow -> one task per SDXL Inference node, in node id order;
- `convert`: any of the three (detected by `detect_format`) to any.

Round trips (task -> graph -> task) give back the very same task: the widgets write defaults for what a task left
out and nothing for values meaning "unset", and the differences are kept on the Inference node (explicit.py);
image references are kept by their load nodes (images.py) and taskUUID by the Inference node (to_task.py).
Graph -> task -> graph gives back the graph. Fields no node holds are refused, naming them (from_task.py).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ..metadata import TASK_KEY, read_texts
from .api_prompt import api_from_graph, graph_from_api
from .from_task import graph_from_tasks
from .mapping import ConvertOptions, GraphConversionError
from .to_task import tasks_from_graph
from .ui_workflow import graph_from_workflow, workflow_from_graph

FORMATS = ("task", "api", "workflow")
_IMAGE_KEYS = (TASK_KEY, "workflow", "prompt")  # metadata texts, in order of preference


def detect_format(data: Any) -> str:
    """"task" (an object with taskType, or an array of them), "api" (every value has a class_type) or "workflow"."""
    if isinstance(data, list) or (isinstance(data, dict) and "taskType" in data):
        return "task"
    if isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data:
        return "workflow"
    if isinstance(data, dict) and data and all(isinstance(v, dict) and "class_type" in v for v in data.values()):
        return "api"
    raise GraphConversionError("not an imageInference task, a ComfyUI API prompt or a ComfyUI workflow")


def tasks_to_api(tasks: dict | list, options: ConvertOptions = ConvertOptions()) -> dict:
    return api_from_graph(graph_from_tasks(tasks, options))


BROWSER_SAFE_INTEGER = 2**53 - 1  # JavaScript's Number.MAX_SAFE_INTEGER: a browser reads larger integers rounded
log = logging.getLogger(__name__)


def tasks_to_workflow(tasks: dict | list, options: ConvertOptions = ConvertOptions()) -> dict:
    for task in tasks if isinstance(tasks, list) else [tasks]:
        seed = task.get("seed") if isinstance(task, dict) else None
        if isinstance(seed, int) and seed > BROWSER_SAFE_INTEGER:
            log.warning("task %s: seed %d is above 2^53 - 1; ComfyUI's frontend reads it as %d when it loads the "
                        "workflow, so the graph would run another seed (the API prompt format keeps it exactly)",
                        task.get("taskUUID"), seed, int(float(seed)))
    return workflow_from_graph(graph_from_tasks(tasks, options))


def graph_to_tasks(graph: dict, options: ConvertOptions = ConvertOptions(), prompt: dict | None = None) -> list[dict]:
    """The tasks of an API prompt or a UI workflow; `prompt`: with a workflow, the API prompt the frontend made of
    the same graph (graphToPrompt's output), which holds each subgraph instance's own widget values."""
    kind = detect_format(graph)
    if kind == "task":
        raise GraphConversionError("this is already a task, not a graph")
    return tasks_from_graph(graph_from_api(graph) if kind == "api" else graph_from_workflow(graph, prompt), options)


def convert(data: Any, to: str, options: ConvertOptions = ConvertOptions(), prompt: dict | None = None) -> Any:
    """Any supported document to `to` ("task": one task object, or an array for several; "api"; "workflow");
    `prompt`: with a workflow, the API prompt made of the same graph (see graph_to_tasks)."""
    if to not in FORMATS:
        raise GraphConversionError(f"cannot convert to {to!r}; choose one of {', '.join(FORMATS)}")
    if detect_format(data) == "task":
        from ..task.model import parse_tasks

        tasks = [t.data for t in parse_tasks(data)]
    else:
        tasks = graph_to_tasks(data, options, prompt)
    if to == "task":
        return tasks[0] if len(tasks) == 1 else tasks
    return tasks_to_api(tasks, options) if to == "api" else tasks_to_workflow(tasks, options)


def _companion_prompt(texts: dict) -> dict | None:
    try:
        prompt = json.loads(texts.get("prompt", "null"))
    except (ValueError, RecursionError):
        return None  # the workflow alone still converts
    return prompt if isinstance(prompt, dict) else None


def read_document(path: Path) -> tuple[Any, dict | None]:
    """A JSON file, or an image carrying a task (sdxlkit_task), a workflow or an API prompt in its metadata; with the
    API prompt an image carries beside its workflow (ComfyUI saves both: the prompt holds each subgraph instance's
    own widget values), else None."""
    data = Path(path).read_bytes()
    if data.lstrip()[:1] in (b"{", b"["):
        try:
            return json.loads(data), None
        except (ValueError, RecursionError) as exc:  # also too many digits or too deep nesting
            raise GraphConversionError(f"{path} is not valid JSON: {exc or type(exc).__name__}") from None
    try:
        texts = read_texts(data)
    except Exception as exc:
        raise GraphConversionError(f"{path} is neither JSON nor a readable image ({exc})") from None
    for key in _IMAGE_KEYS:
        if key in texts:
            try:
                document = json.loads(texts[key])
            except (ValueError, RecursionError) as exc:
                raise GraphConversionError(f"{path}: the {key!r} metadata is not valid JSON ({exc})") from None
            return document, _companion_prompt(texts) if key == "workflow" else None
    raise GraphConversionError(f"{path} carries no task, workflow or prompt in its metadata")
