"""Finished images as API-shaped result objects, written to disk atomically when the output type is URL."""

from __future__ import annotations

import base64
import json
import os
import tempfile
import uuid
from pathlib import Path

from PIL import Image

from .errors import SdxlKitError
from .images import FORMATS, data_uri
from .metadata import TASK_KEY, encode_with_metadata
from .task.model import Task

INLINE_OUTPUT_TYPES = ("base64Data", "dataURI")


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (os.umask would, for every thread)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0o22)
        os.umask(mask)
        return mask


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file. The file gets the mode
    open() would give it (0666 less the umask); mkstemp alone would leave it 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(f.fileno(), 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def writes_files(task: Task) -> bool:
    return task.get("outputType") not in INLINE_OUTPUT_TYPES


def check_output_folder(folder: Path | None) -> None:
    """Before any work: `folder` can become the folder images are written to (it may not exist yet)."""
    if folder is None:
        raise SdxlKitError("outputType URL needs an output folder")
    existing = Path(os.path.abspath(folder))
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise SdxlKitError(f"cannot write images into {folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SdxlKitError(f"cannot write images into {folder}: {existing} is not writable")


def seeded_task(task_data: dict, seed: int) -> dict:
    """The task that reproduces one image of a run."""
    return {k: v for k, v in task_data.items() if k != "numberResults"} | {"seed": seed}


def api_item(task: Task, seed: int, data: bytes, url: str | None = None, image_uuid: str | None = None,
             nsfw: bool | None = None) -> dict:
    """One API-shaped result for an encoded image: imageURL (`url`), imageBase64Data or imageDataURI by outputType;
    NSFWContent when the task asked for the safety check (`nsfw`)."""
    result = {"taskType": "imageInference", "taskUUID": task.uuid, "imageUUID": image_uuid or str(uuid.uuid4()),
              "seed": seed}
    output_type = task.get("outputType")
    if output_type == "base64Data":
        result["imageBase64Data"] = base64.b64encode(data).decode("ascii")
    elif output_type == "dataURI":
        result["imageDataURI"] = data_uri(data, task.get("outputFormat"))
    else:
        if url is None:
            raise ValueError("outputType URL needs a URL for the image")
        result["imageURL"] = url
    if nsfw is not None:
        result["NSFWContent"] = nsfw
    if task.get("includeCost"):
        result["cost"] = 0
    return result


def image_result(task: Task, image: Image.Image, seed: int, out_dir: Path | None, nsfw: bool | None = None) -> dict:
    fmt = task.get("outputFormat")
    texts = {TASK_KEY: json.dumps(seeded_task(task.data, seed))}
    data = encode_with_metadata(image, fmt, task.get("outputQuality"), texts)
    url, image_uuid = None, str(uuid.uuid4())
    if writes_files(task):
        check_output_folder(out_dir)
        path = Path(out_dir).resolve() / f"{image_uuid}.{FORMATS[fmt][2]}"
        write_atomic(path, data)
        url = path.as_uri()
    return api_item(task, seed, data, url, image_uuid, nsfw)
