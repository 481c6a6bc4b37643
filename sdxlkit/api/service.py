"""The headless task route's logic, apart from HTTP and the host's queue: reading a request, admitting tasks (every
check that can fail runs before anything is queued), and turning saved images into API results."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import Problem, SdxlKitError, TaskValidationError
from ..images import file_reference
from ..results import api_item
from ..task.model import Task, parse_tasks
from .outbound import OutboundPolicy, check_outbound

# Fields the route itself honours (how results are delivered); the engine and the graph get the task without them.
ROUTE_FIELDS = ("deliveryMethod", "webhookURL", "uploadEndpoint", "outputType", "includeCost")
GET_RESPONSE = "getResponse"


class TaskRefused(SdxlKitError):
    """An error of one task of a request, with the task it belongs to."""

    def __init__(self, error: Exception, task_uuid: str | None):
        super().__init__(str(error))
        self.error, self.task_uuid = error, task_uuid


@dataclass
class Request:
    tasks: list[dict]  # imageInference tasks, as sent
    polls: list[str]  # taskUUIDs of getResponse tasks


def read_request(body) -> Request:
    items = body if isinstance(body, list) else [body]
    if not items or not all(isinstance(i, dict) for i in items):
        raise SdxlKitError("the request body must be a task object or a non-empty JSON array of task objects")
    polls = [i for i in items if i.get("taskType") == GET_RESPONSE]
    for poll in polls:
        if not isinstance(poll.get("taskUUID"), str):
            raise SdxlKitError("getResponse: taskUUID is required (the taskUUID of an imageInference task sent with "
                               "deliveryMethod async)")
    return Request([i for i in items if i.get("taskType") != GET_RESPONSE], [p["taskUUID"] for p in polls])


def engine_view(task: Task) -> Task:
    """The task without the fields the route handles itself (delivery, result shape, webhook, upload)."""
    return Task({k: v for k, v in task.data.items() if k not in ROUTE_FIELDS})


def image_references(task: Task) -> list[tuple[str, str]]:
    """(field path, reference) of every image a task reads."""
    refs = [(f"inputs.{name}", task.data["inputs"][name]) for name in ("seedImage", "maskImage")
            if name in task.data.get("inputs", {})]
    refs += [(f"controlNet[{i}].guideImage", c["guideImage"]) for i, c in enumerate(task.data.get("controlNet", []))]
    return refs + [(f"photoMaker.images[{i}]", ref) for i, ref in enumerate(task.data.get("photoMaker", {}).get("images", []))]


def check_image_files(task: Task, image_root: Path) -> None:
    """A request may name image files only inside `image_root` (ComfyUI's input folder): a server's other files are
    not a client's to read."""
    root = image_root.resolve()
    problems = []
    for field, ref in image_references(task):
        path = file_reference(ref, image_root)
        if path is not None and not path.resolve().is_relative_to(root):
            problems.append(Problem(f"$.{field}", f"names a file outside ComfyUI's input folder; send the image as a data "
                                                  f"URI or base64, or name a file in {image_root}"))
    if problems:
        raise TaskValidationError(problems)


def admit(tasks: list[dict], check: Callable[[Task], None], policy: OutboundPolicy, image_root: Path) -> list[Task]:
    """Validate every task, then check each as the engine will run it; the first failure refuses the request."""
    parsed = parse_tasks(tasks)
    for task in parsed:
        try:
            for name in ("webhookURL", "uploadEndpoint"):
                if task.has(name):
                    check_outbound(task.data[name], name, policy)
            check_image_files(task, image_root)
            check(engine_view(task))
        except SdxlKitError as exc:
            raise TaskRefused(exc, task.uuid) from None
    return [Task(t.data if t.has("seed") else t.data | {"seed": secrets.randbelow(2**32)}) for t in parsed]


def is_async(task: Task) -> bool:
    return task.get("deliveryMethod") == "async"


def results(task: Task, images: list[tuple[bytes, str | None]]) -> list[dict]:
    """API results for the images a run saved, in order: image i has seed + i; `url` serves the saved file."""
    return [api_item(task, task.get("seed") + index, data, url) for index, (data, url) in enumerate(images)]
