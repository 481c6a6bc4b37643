"""A validated imageInference task: the JSON object as given, plus schema defaults on read."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from . import schema
from .validate import validate_tasks

# Fields the engine cannot execute yet. Each later feature removes its entry.
NOT_EXECUTABLE_YET = (
    "webhookURL", "uploadEndpoint", "ttl",
)

# Defaults for fields whose schema gives none (the server's behaviour is undocumented there).
LOCAL_DEFAULTS = {"CFGScale": 7.0, "clipSkip": 0, "ultralytics.inpaintSize": 1024}  # inpaintSize: SDXL's native side
# hiresFix: true, and what an object leaves out (its steps default to the task's): RealESRGAN_x4plus, ComfyUI's
# usual hires denoise (A1111's UI default is 0.7)
HIRES_DEFAULTS = {"model": "runware:504@1", "strength": 0.5}


def hires_settings(task: Task) -> dict:
    """The task's hiresFix as model, steps and strength: true = the defaults; steps default to the task's."""
    given = task.data["hiresFix"]
    return HIRES_DEFAULTS | {"steps": task.get("steps")} | (given if isinstance(given, dict) else {})


class Task:
    """Keeps exactly the keys the user set (round trips stay stable); `get` falls back to the schema default."""

    def __init__(self, data: dict):
        self.data = data

    def get(self, path: str, fallback: Any = None) -> Any:
        node: Any = self.data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                value = schema.default(path)
                if value is None:
                    value = LOCAL_DEFAULTS.get(path)
                return fallback if value is None else value
            node = node[part]
        return node

    def has(self, path: str) -> bool:
        node: Any = self.data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    @property
    def uuid(self) -> str:
        return self.data["taskUUID"]

    def not_executable_fields(self) -> list[str]:
        fields = [name for name in NOT_EXECUTABLE_YET if name in self.data]
        if self.data.get("deliveryMethod") == "async":
            fields.append("deliveryMethod=async")
        return fields

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.data, indent=indent)


def parse_tasks(data: Any) -> list[Task]:
    """Validate an object or array of tasks (already parsed JSON) and wrap each."""
    return [Task(t) for t in validate_tasks(data)]


def read_task_document(path: str | Path) -> Any:
    """The JSON of a task file, or of the task an image saved by sdxlkit carries (PNG/JPG/WEBP metadata)."""
    from ..errors import Problem, SdxlKitError, TaskValidationError
    from ..metadata import is_image, task_from_image

    try:
        raw = Path(path).read_bytes()
        text = task_from_image(raw, str(path)) if is_image(raw) else raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SdxlKitError(f"cannot read the task file {path}: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or an integer of more digits than Python converts
        raise TaskValidationError([Problem("$", f"{path} is not valid JSON: {exc}")]) from None
    except RecursionError:
        raise TaskValidationError([Problem("$", f"{path} nests arrays or objects too deeply")]) from None


def load_tasks(path: str | Path) -> list[Task]:
    """Tasks from a JSON file, or the task an image saved by sdxlkit carries (PNG/JPG/WEBP metadata)."""
    return parse_tasks(read_task_document(path))


def new_task_uuid() -> str:
    return str(uuid.uuid4())
