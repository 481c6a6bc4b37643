"""Run imageInference tasks end to end: check everything first (fields, images, model files), then load, sample, write."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from .errors import ImageInputError, NotSupportedYet, SdxlKitError
from .images import load_image, to_mask, to_rgb
from .loading.cache import MODEL_CACHE, ModelCache
from .loading.loader import ModelSpec
from .registry import ModelsDir
from .task.model import Task


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class RunOptions:
    models_dir: Path
    out_dir: Path | None = None
    device: str | None = None
    precision: str = "auto"
    allow_urls: bool = False
    allow_pickle: bool = False
    base_dir: Path | None = None  # for relative image paths in a task file


@dataclass
class PreparedTask:
    task: Task
    spec: ModelSpec
    generation: Any  # sdxlkit.generate.Generation, imported lazily because it pulls in torch


def task_images(task: Task, options: RunOptions) -> dict[str, Image.Image]:
    images = {}
    for name in ("seedImage", "maskImage"):
        ref = task.get(f"inputs.{name}")
        if ref is not None:
            image = load_image(ref, f"inputs.{name}", allow_urls=options.allow_urls, base_dir=options.base_dir)
            images[name] = to_mask(image) if name == "maskImage" else to_rgb(image)
    return images


def _check_geometry(task: Task, images: dict[str, Image.Image]) -> None:
    seed = images.get("seedImage")
    width, height = task.get("width"), task.get("height")
    if seed is not None and task.has("outpaint"):
        o = task.data["outpaint"]
        grown = (seed.width + o.get("left", 0) + o.get("right", 0), seed.height + o.get("top", 0) + o.get("bottom", 0))
        if grown != (width, height):
            raise ImageInputError(
                f"outpaint: seedImage {seed.width}x{seed.height} extended by left/right/top/bottom gives "
                f"{grown[0]}x{grown[1]}, but width x height is {width}x{height}; they must be equal"
            )
    mask = images.get("maskImage")
    if mask is not None and seed is not None and mask.size != seed.size:
        raise ImageInputError(f"inputs.maskImage is {mask.width}x{mask.height} but inputs.seedImage is {seed.width}x{seed.height}; they must have the same size")


def generation_for(task: Task, images: dict[str, Image.Image]):
    from .generate import Generation

    outpaint = task.data.get("outpaint")
    return Generation(
        prompt=task.get("positivePrompt"), negative_prompt=task.get("negativePrompt"),
        width=task.get("width"), height=task.get("height"), steps=task.get("steps"),
        cfg=float(task.get("CFGScale")), scheduler=task.get("scheduler"),
        seed=task.get("seed") if task.has("seed") else secrets.randbelow(2**32),
        count=task.get("numberResults"), clip_skip=task.get("clipSkip"), weighting=task.get("promptWeighting"),
        strength=float(task.get("strength")) if (task.has("strength") or not outpaint) else 1.0,
        seed_image=images.get("seedImage"), mask_image=images.get("maskImage"), mask_margin=task.get("maskMargin"),
        outpaint=outpaint, outpaint_blur=task.get("outpaint.blur") if outpaint else 0,
    )


def _refuse_not_executable(task: Task) -> None:
    unsupported = task.not_executable_fields()
    if unsupported:
        raise NotSupportedYet(unsupported)


def _check_scheduler(task: Task) -> None:
    from .schedulers import check_scheduler

    check_scheduler(task.get("scheduler"))


def check_runnable(task: Task, images: dict[str, Image.Image]) -> None:
    """Refuse what this engine cannot run yet, unmappable schedulers, and image sizes that do not fit the task."""
    _refuse_not_executable(task)
    _check_scheduler(task)
    _check_geometry(task, images)


def prepare(task: Task, options: RunOptions) -> PreparedTask:
    """Everything that can fail before a model is loaded: unsupported fields, images, geometry, model files."""
    _refuse_not_executable(task)
    _check_scheduler(task)
    images = task_images(task, options)
    _check_geometry(task, images)
    models = ModelsDir(Path(options.models_dir))
    spec = ModelSpec(
        checkpoint=models.resolve(task.get("model"), "checkpoints"),
        vae=models.resolve(task.get("vae"), "vae") if task.has("vae") else None,
        precision=options.precision, device=options.device or default_device(), allow_pickle=options.allow_pickle,
    )
    return PreparedTask(task, spec, generation_for(task, images))


def generate_task(components, task: Task, images: dict[str, Image.Image], on_step=None) -> list[tuple[Any, int]]:
    """Run a task on already loaded components with already decoded images (the ComfyUI node's path)."""
    from .generate import generate

    check_runnable(task, images)
    return generate(components, generation_for(task, images), on_step)


def run_prepared(prepared: PreparedTask, options: RunOptions, cache: ModelCache = MODEL_CACHE, on_step=None) -> list[dict]:
    from .generate import generate, to_pil
    from .results import image_result

    outputs = generate(cache.get(prepared.spec), prepared.generation, on_step)
    return [image_result(prepared.task, to_pil(image)[0], seed, options.out_dir) for image, seed in outputs]


def run_tasks(tasks: list[Task], options: RunOptions, cache: ModelCache = MODEL_CACHE, on_step=None) -> list[dict]:
    """Prepare every task before running any, so a bad task in an array stops the run before work is done."""
    if not tasks:
        raise SdxlKitError("no tasks to run")
    prepared = [prepare(task, options) for task in tasks]
    return [result for p in prepared for result in run_prepared(p, options, cache, on_step)]
