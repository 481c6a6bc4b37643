"""Run imageInference tasks end to end: check everything first (fields, images, model files), then load, sample, write."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PIL import Image

from . import photomaker
from .errors import ImageInputError, NotSupportedYet, Problem, SdxlKitError, TaskValidationError
from .images import load_image, to_mask, to_rgb
from .loading.cache import MODEL_CACHE, ModelCache
from .loading.loader import ModelSpec
from .registry import ModelsDir
from .task import schema
from .task.model import Task

# (model reference, kind) -> file: ModelsDir.resolve for the CLI, the files picked in the graph for ComfyUI nodes
Resolver = Callable[[str, str], Path]


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
    for i, control in enumerate(task.data.get("controlNet", [])):
        key = guide_image_key(i)
        images[key] = to_rgb(load_image(control["guideImage"], key, allow_urls=options.allow_urls, base_dir=options.base_dir))
    for i, photo in enumerate(task.get("photoMaker.images", [])):
        key = photo_key(i)
        images[key] = to_rgb(load_image(photo, key, allow_urls=options.allow_urls, base_dir=options.base_dir))
    return images


def guide_image_key(index: int) -> str:
    return f"controlNet[{index}].guideImage"


def photo_key(index: int) -> str:
    return f"photoMaker.images[{index}]"


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


def _loras(task: Task, resolve: Resolver) -> list[tuple[Path, float]]:
    weight = schema.default("lora[].weight")
    return [(resolve(entry["model"], "loras"), float(entry.get("weight", weight))) for entry in task.data.get("lora", [])]


def _controls(task: Task, images: dict[str, Image.Image], resolve: Resolver) -> list:
    from .controlnet import step_window
    from .generate import ControlRequest

    weight, mode = schema.default("controlNet[].weight"), schema.default("controlNet[].controlMode")
    return [ControlRequest(
        path=resolve(entry["model"], "controlnet"), image=images[guide_image_key(i)],
        weight=float(entry.get("weight", weight)), mode=entry.get("controlMode", mode),
        window=step_window(task.get("steps"), entry.get("startStep"), entry.get("startStepPercentage"),
                           entry.get("endStep"), entry.get("endStepPercentage")),
    ) for i, entry in enumerate(task.data.get("controlNet", []))]


def _photomaker(task: Task, images: dict[str, Image.Image], resolve: Resolver):
    from .generate import PhotoMakerRequest

    if not task.has("photoMaker"):
        return None
    return PhotoMakerRequest(path=resolve(photomaker.DEFAULT_REFERENCE, "photomaker"),
                             images=[images[photo_key(i)] for i in range(len(task.get("photoMaker.images")))],
                             strength=task.get("photoMaker.strength"))


def _prompts(task: Task) -> tuple[str, str | None]:
    """positivePrompt and negativePrompt, rewritten by PhotoMaker's style template when photoMaker is set."""
    prompt, negative = task.get("positivePrompt"), task.get("negativePrompt")
    if task.has("photoMaker"):
        return photomaker.apply_style(task.get("photoMaker.style"), prompt, negative)
    return prompt, negative


def generation_for(task: Task, images: dict[str, Image.Image], resolve: Resolver):
    from .generate import Generation

    outpaint = task.data.get("outpaint")
    prompt, negative = _prompts(task)
    return Generation(
        prompt=prompt, negative_prompt=negative,
        width=task.get("width"), height=task.get("height"), steps=task.get("steps"),
        cfg=float(task.get("CFGScale")), scheduler=task.get("scheduler"),
        seed=task.get("seed") if task.has("seed") else secrets.randbelow(2**32),
        count=task.get("numberResults"), clip_skip=task.get("clipSkip"), weighting=task.get("promptWeighting"),
        strength=float(task.get("strength")) if (task.has("strength") or not outpaint) else 1.0,
        seed_image=images.get("seedImage"), mask_image=images.get("maskImage"), mask_margin=task.get("maskMargin"),
        outpaint=outpaint, outpaint_blur=task.get("outpaint.blur") if outpaint else 0,
        loras=_loras(task, resolve), controls=_controls(task, images, resolve),
        photomaker=_photomaker(task, images, resolve),
    )


def _refuse_not_executable(task: Task) -> None:
    unsupported = task.not_executable_fields()
    if unsupported:
        raise NotSupportedYet(unsupported)


def _check_scheduler(task: Task) -> None:
    from .schedulers import check_scheduler

    check_scheduler(task.get("scheduler"))


def _check_adapters(task: Task) -> None:
    """`transformer` picks a stage of two-stage (video) models; SDXL has one, so only "both" means something."""
    both = schema.default("lora[].transformer")
    problems = [Problem(f"$.lora[{i}].transformer", f"got {entry['transformer']!r}; SDXL has a single denoiser stage, "
                        f"so only {both!r} (the default) applies: use {both!r} or leave the field out")
                for i, entry in enumerate(task.data.get("lora", [])) if entry.get("transformer", both) != both]
    if problems:
        raise TaskValidationError(problems)


def _check_photomaker(task: Task) -> None:
    """PhotoMaker finds the person through its trigger word in the prompt, at token level (plain or sdEmbeds
    prompts): a prompt without it would silently lose the identity the task asks for, so it is refused."""
    from .loading.tokenizers import load_clip_tokenizers
    from .photomaker.prompt import trigger_error

    if not task.has("photoMaker"):
        return
    weighting = task.get("promptWeighting")
    if weighting == "compel":
        raise TaskValidationError([Problem("$.promptWeighting", "PhotoMaker works on the prompt's tokens, which "
                                           "compel builds itself: use 'sdEmbeds' or no promptWeighting with photoMaker")])
    error = trigger_error(load_clip_tokenizers()[0], task.get("positivePrompt"), weighting)
    if error:
        raise TaskValidationError([Problem("$.positivePrompt", error)])


def _check_fields(task: Task) -> None:
    """Refuse what this engine cannot run yet, unmappable schedulers and adapter options SDXL has no use for."""
    _refuse_not_executable(task)
    _check_scheduler(task)
    _check_adapters(task)
    _check_photomaker(task)


def check_runnable(task: Task, images: dict[str, Image.Image]) -> None:
    _check_fields(task)
    _check_geometry(task, images)


def prepare(task: Task, options: RunOptions) -> PreparedTask:
    """Everything that can fail before a model is loaded: unsupported fields, images, geometry, model files."""
    _check_fields(task)
    images = task_images(task, options)
    _check_geometry(task, images)
    models = ModelsDir(Path(options.models_dir))
    spec = ModelSpec(
        checkpoint=models.resolve(task.get("model"), "checkpoints"),
        vae=models.resolve(task.get("vae"), "vae") if task.has("vae") else None,
        precision=options.precision, device=options.device or default_device(), allow_pickle=options.allow_pickle,
    )
    return PreparedTask(task, spec, generation_for(task, images, models.resolve))


def generate_task(components, task: Task, images: dict[str, Image.Image], resolve: Resolver,
                  on_step=None) -> list[tuple[Any, int]]:
    """Run a task on already loaded components with already decoded images (the ComfyUI node's path)."""
    from .generate import generate

    check_runnable(task, images)
    return generate(components, generation_for(task, images, resolve), on_step)


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
