"""Engine errors in the API's shape: {"errors": [{"code", "message", "parameter", "taskType", "taskUUID"}]}."""

from __future__ import annotations

import re

from ..errors import ImageInputError, ModelLoadError, ModelNotFound, SdxlKitError, TaskValidationError, UnsupportedScheduler

_TASK_PATH = re.compile(r"^\$(?:\[(\d+)\])?\.?(.*)$")
_FIELD_PREFIX = re.compile(r"^(?:\$(?:\[\d+\])?\.)?([A-Za-z][\w.\[\]]*): ")  # "inputs.seedImage: ...", "$.lora[0].model: ..."
# error class -> (code, HTTP status)
_CODES = [(UnsupportedScheduler, "unsupportedScheduler", 400), (ModelNotFound, "modelNotFound", 400),
          (ImageInputError, "invalidImage", 400), (ModelLoadError, "invalidModel", 400), (SdxlKitError, "invalidRequest", 400)]


def _uuid_of(tasks: list, index: int | None) -> str | None:
    if isinstance(tasks, list) and index is not None and index < len(tasks) and isinstance(tasks[index], dict):
        return tasks[index].get("taskUUID")
    if isinstance(tasks, dict):
        return tasks.get("taskUUID")
    return None


def _entry(code: str, message: str, parameter: str | None, task_uuid: str | None) -> dict:
    return {"code": code, "message": message, "parameter": parameter, "taskType": "imageInference", "taskUUID": task_uuid}


def validation_errors(error: TaskValidationError, tasks, task_uuid: str | None = None) -> list[dict]:
    """One entry per problem, with the problem's code; `parameter` is the field path inside its task ("width",
    "lora[0].weight"). `task_uuid` names the task of problems found checking one task of a request."""
    out = []
    for problem in error.problems:
        match = _TASK_PATH.match(problem.path)
        index = int(match.group(1)) if match and match.group(1) is not None else (0 if isinstance(tasks, dict) else None)
        parameter = (match.group(2) if match else problem.path) or None
        out.append(_entry(problem.code, f"{parameter or 'task'}: {problem.message}", parameter,
                          task_uuid or _uuid_of(tasks, index)))
    return out


def _parameter(error: Exception) -> str | None:
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
