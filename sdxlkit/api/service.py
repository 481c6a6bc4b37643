"""The headless task route's logic, apart from HTTP and the host's queue: reading a request, admitting tasks (every
check that can fail runs before anything is queued), and turning saved images into API results."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import ModelNotFound, Problem, SdxlKitError, TaskValidationError
from ..images import load_image, to_mask, to_rgb
from ..results import api_item
from ..runnable import image_references
from ..task.model import Task, parse_tasks
from .body import RequestTooLarge
from .inline_images import InlineImages
from .outbound import CheckedURL, OutboundPolicy, check_outbound

# Fields the route itself honours (how results are delivered); the engine and the graph get the task without them.
ROUTE_FIELDS = ("deliveryMethod", "webhookURL", "uploadEndpoint", "outputType", "includeCost")
GET_RESPONSE = "getResponse"
OUTBOUND_FIELDS = ("webhookURL", "uploadEndpoint")
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s_-]{16,}")


class TaskRefused(SdxlKitError):
    """An error of one task of a request, with the task it belongs to."""

    def __init__(self, error: Exception, task_uuid: str | None):
        super().__init__(str(error))
        self.error, self.task_uuid = error, task_uuid


@dataclass
class Request:
    tasks: list[dict]  # imageInference tasks, as sent
    polls: list[str]  # taskUUIDs of getResponse tasks


@dataclass
class Admitted:
    """A task the route will queue: its outbound URLs with the addresses checked, and the token its inline images
    are held under."""

    task: Task
    targets: dict[str, CheckedURL] = field(default_factory=dict)
    holder: str = field(default_factory=lambda: str(uuid.uuid4()))


def read_request(body, max_tasks: int) -> Request:
    items = body if isinstance(body, list) else [body]
    if not items or not all(isinstance(i, dict) for i in items):
        raise SdxlKitError("the request body must be a task object or a non-empty JSON array of task objects")
    if len(items) > max_tasks:
        raise RequestTooLarge(f"the request holds {len(items)} tasks; this server takes at most {max_tasks} per request "
                              "(SDXLKIT_MAX_TASKS); split it")
    polls = [i for i in items if i.get("taskType") == GET_RESPONSE]
    for poll in polls:
        if not isinstance(poll.get("taskUUID"), str):
            raise SdxlKitError("getResponse: taskUUID is required (the taskUUID of an imageInference task sent with "
                               "deliveryMethod async)")
    return Request([i for i in items if i.get("taskType") != GET_RESPONSE], [p["taskUUID"] for p in polls])


def engine_view(task: Task) -> Task:
    """The task without the fields the route handles itself (delivery, result shape, webhook, upload)."""
    return Task({k: v for k, v in task.data.items() if k not in ROUTE_FIELDS})


def _confined(ref: str, field: str, root: Path) -> str:
    """One path policy for every route: a file reference names a file inside `root` (after following links) and
    comes back relative to it; text that is not such a file is image data (base64 as a data URI); anything else is
    refused with the same words whether or not it exists."""
    if ref.startswith(("data:", "http://", "https://")):
        return ref
    path = Path(ref.removeprefix("file://")).expanduser()
    try:
        resolved = (path if path.is_absolute() else root / path).resolve()
        if resolved.is_relative_to(root.resolve()) and resolved.is_file():
            return resolved.relative_to(root.resolve()).as_posix()
    except (OSError, ValueError):  # text no file system takes as a name: long base64
        pass
    if _BASE64.fullmatch(ref):
        return "data:image/png;base64," + ref
    raise TaskValidationError([Problem(f"$.{field}", "is not a file in ComfyUI's input folder (names outside it are "
                                                     "refused); send the image as a data URI or base64, or name a "
                                                     "file in the input folder")])


def confine_images(task: Task, image_root: Path) -> Task:
    """The task with every image reference checked by the path policy: files relative to `image_root` (ComfyUI's
    input folder), everything else data URIs. A server's other files are not a client's to read."""
    data = _copy_images(task.data)
    problems = []
    for where, ref in image_references(task):
        try:
            _set_image(data, where, _confined(ref, where, image_root))
        except TaskValidationError as exc:
            problems += exc.problems
    if problems:
        raise TaskValidationError(problems)
    return Task(data)


def _copy_images(data: dict) -> dict:
    copy = dict(data)
    if "inputs" in copy:
        copy["inputs"] = dict(copy["inputs"])
    if "controlNet" in copy:
        copy["controlNet"] = [dict(c) for c in copy["controlNet"]]
    if "ipAdapters" in copy:
        copy["ipAdapters"] = [dict(a, guideImages=list(a["guideImages"])) for a in copy["ipAdapters"]]
    if "photoMaker" in copy:
        copy["photoMaker"] = dict(copy["photoMaker"], images=list(copy["photoMaker"]["images"]))
    return copy


def _index(field: str, name: str) -> int:
    """i of `name[i]` in a field path such as ipAdapters[1].guideImages[0]."""
    start = field.index(name + "[") + len(name) + 1
    return int(field[start:field.index("]", start)])


def _set_image(data: dict, field: str, ref: str) -> None:
    if field.startswith("inputs."):
        data["inputs"][field.removeprefix("inputs.")] = ref
    elif field.startswith("ipAdapters["):
        data["ipAdapters"][_index(field, "ipAdapters")]["guideImages"][_index(field, "guideImages")] = ref
    elif field.startswith("photoMaker."):
        data["photoMaker"]["images"][_index(field, "images")] = ref
    else:
        data["controlNet"][_index(field, "controlNet")]["guideImage"] = ref


def hold_inline_images(task: Task, store: InlineImages, holder: str) -> Task:
    """The task with each data URI replaced by a file of `store`, as the engine reads it (RGB, or the mask)."""
    data = _copy_images(task.data)
    for where, ref in image_references(task):
        if ref.startswith("data:"):
            image = load_image(ref, where)
            _set_image(data, where, store.hold(holder, to_mask(image) if where == "inputs.maskImage" else to_rgb(image)))
    return Task(data)


def _model_references(task: Task) -> list[tuple[str, str]]:
    """(field, reference) of every model a task names."""
    fields = [("model", task.get("model")), ("vae", task.get("vae"))]
    fields += [(f"lora[{i}].model", e.get("model")) for i, e in enumerate(task.data.get("lora", []))]
    fields += [(f"controlNet[{i}].model", e.get("model")) for i, e in enumerate(task.data.get("controlNet", []))]
    fields += [(f"embeddings[{i}].model", e.get("model")) for i, e in enumerate(task.data.get("embeddings", []))]
    fields.append(("refiner.model", task.get("refiner.model")))
    return [(name, ref) for name, ref in fields if isinstance(ref, str) and ref]


def confine_models(task: Task) -> None:
    """A request names models by id or by a name inside ComfyUI's models folders: an absolute path or one that climbs
    out with '..' is refused before anything looks for it, so no answer tells whether it exists."""
    problems = [Problem(f"$.{name}", "must be a model id or a file name inside ComfyUI's models folder (absolute paths "
                                     "and '..' are refused)")
                for name, ref in _model_references(task)
                if Path(ref).is_absolute() or ref.startswith(("~", "file:")) or ".." in Path(ref).parts]
    if problems:
        raise TaskValidationError(problems)


def _model_field(task: Task, error: ModelNotFound) -> str | None:
    """The task field holding the model reference an error names."""
    return next((name for name, ref in _model_references(task) if repr(ref) in str(error)), None)


def admit(tasks: list[dict], check: Callable[[Task], None], policy: OutboundPolicy, image_root: Path,
          store: InlineImages | None = None) -> list[Admitted]:
    """Validate every task, then check each as the engine will run it; the first failure refuses the request (and
    lets go of the images held for it)."""
    admitted: list[Admitted] = []
    try:
        for task in parse_tasks(tasks):
            entry = Admitted(task)
            admitted.append(entry)
            try:
                entry.targets = {name: check_outbound(task.data[name], name, policy) for name in OUTBOUND_FIELDS
                                 if task.has(name)}
                confine_models(task)
                task = confine_images(task, image_root)
                if store is not None:
                    task = hold_inline_images(task, store, entry.holder)
                if not task.has("seed"):
                    task = Task(task.data | {"seed": secrets.randbelow(2**32)})
                entry.task = task
                check(engine_view(task))
            except ModelNotFound as exc:
                exc.parameter = _model_field(task, exc)
                raise TaskRefused(exc, task.uuid) from None
            except SdxlKitError as exc:
                raise TaskRefused(exc, task.uuid) from None
    except BaseException:
        for entry in admitted:
            if store is not None:
                store.release(entry.holder)
        raise
    return admitted


def is_async(task: Task) -> bool:
    return task.get("deliveryMethod") == "async"


def results(task: Task, images: list[tuple[bytes, str | None]], nsfw: list[bool | None] | None = None) -> list[dict]:
    """API results for the images a run saved, in order: image i has seed + i; `url` serves the saved file;
    `nsfw` the safety check's NSFWContent of each (None: not checked)."""
    nsfw = nsfw or [None] * len(images)
    return [api_item(task, task.get("seed") + index, data, url, nsfw=flag)
            for index, ((data, url), flag) in enumerate(zip(images, nsfw))]
