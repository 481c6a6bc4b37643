"""Engine errors in the API's shape: {"errors": [{"code", "message", "parameter", "taskType", "taskUUID"}]}."""

from __future__ import annotations

import re

from ..errors import ImageInputError, ModelLoadError, ModelNotFound, SdxlKitError, TaskValidationError, UnsupportedScheduler
from .body import RequestTooLarge


class ServerBusy(SdxlKitError):
    """The server cannot take the request now (e.g. its room for inline images is full): HTTP 503."""


_TASK_PATH = re.compile(r"^\$(?:\[(\d+)\])?\.?(.*)$")
_FIELD_PREFIX = re.compile(r"^(?:\$(?:\[\d+\])?\.)?([A-Za-z][\w.\[\]]*): ")  # "inputs.seedImage: ...", "$.lora[0].model: ..."
# error class -> (code, HTTP status)
_CODES = [(TaskValidationError, "invalidParameter", 400), (UnsupportedScheduler, "unsupportedScheduler", 400), (ModelNotFound, "modelNotFound", 400),
          (ImageInputError, "invalidImage", 400), (ModelLoadError, "invalidModel", 400),
          (RequestTooLarge, "requestTooLarge", 413), (ServerBusy, "serverBusy", 503), (SdxlKitError, "invalidRequest", 400)]
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~])/(?:[^\s/'\"(),;:]+/)*[^\s/'\"(),;:]+")


def _uuid_of(tasks: list, index: int | None) -> str | None:
    if isinstance(tasks, list) and index is not None and index < len(tasks) and isinstance(tasks[index], dict):
        return tasks[index].get("taskUUID")
    if isinstance(tasks, dict):
        return tasks.get("taskUUID")
    return None


def _entry(code: str, message: str, parameter: str | None, task_uuid: str | None) -> dict:
    return {"code": code, "message": message, "parameter": parameter, "taskType": "imageInference", "taskUUID": task_uuid}


def without_paths(message: str, roles: dict[str, str]) -> str:
    """`message` with the server's folders named by their role ("the input folder", "models/checkpoints") and any
    other absolute path left out, so errors tell a client nothing about the server's files."""
    for folder, role in sorted(roles.items(), key=lambda item: -len(item[0])):
        message = message.replace(folder.rstrip("/") + "/", role + "/").replace(folder.rstrip("/"), role)
    return _ABSOLUTE_PATH.sub("(a path outside the allowed folders)", message)


def validation_errors(error: TaskValidationError, tasks, task_uuid: str | None = None) -> list[dict]:
    """One entry per problem, with the problem's code; `parameter` is the field path inside its task ("width",
    "lora[0].weight"). A problem path without a task index belongs to `task_uuid` (the task it was found in) when
    given."""
    out = []
    for problem in error.problems:
        match = _TASK_PATH.match(problem.path)
        index = int(match.group(1)) if match and match.group(1) is not None else (0 if isinstance(tasks, dict) else None)
        parameter = (match.group(2) if match else problem.path) or None
        owner = task_uuid if task_uuid is not None and (not match or match.group(1) is None) else _uuid_of(tasks, index)
        out.append(_entry(problem.code, f"{parameter or 'task'}: {problem.message}", parameter, owner))
    return out


def _parameter(error: Exception) -> str | None:
    if getattr(error, "parameter", None):
        return error.parameter
    match = _FIELD_PREFIX.match(str(error)) if isinstance(error, (ImageInputError, ModelNotFound)) else None
    return match.group(1) if match else None


def error_response(error: Exception, tasks=None, task_uuid: str | None = None) -> tuple[dict, int]:
    """(body, HTTP status) for any error; errors that are not the user's are 500 with a generic code. Without a
    task_uuid, a request of one task names that task."""
    if isinstance(error, TaskValidationError):
        return {"errors": validation_errors(error, tasks, task_uuid)}, 400
    if task_uuid is None and (isinstance(tasks, dict) or (isinstance(tasks, list) and len(tasks) == 1)):
        task_uuid = _uuid_of(tasks, 0)
    for cls, code, status in _CODES:
        if isinstance(error, cls):
            return {"errors": [_entry(code, str(error), _parameter(error), task_uuid)]}, status
    return {"errors": [_entry("internalError", f"{type(error).__name__}: {error}", None, task_uuid)]}, 500
