"""Run imageInference tasks end to end: check everything first (fields, images, model files), then load, sample, write."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PIL import Image

from . import photomaker
from .errors import ModelNotFound, Problem, SdxlKitError, TaskValidationError
from .loading.cache import MODEL_CACHE, ModelCache
from .loading.loader import ModelSpec
from .registry import ModelsDir
from .results import check_output_folder, writes_files
from .runnable import check_runnable, check_task, guide_image_key, ip_guide_image_key, photo_key, task_root
from .task import schema
from .task.model import Task

# (model reference, kind) -> file: ModelsDir.resolve for the CLI, the files picked in the graph for ComfyUI nodes
Resolver = Callable[[str, str], Path]
DEVICE_KINDS = ("cpu", "cuda", "mps", "xpu")


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(name: str | None) -> str:
    """The device to run on: `name` if torch knows it and it is there (one clear line otherwise), else the default."""
    import torch

    if name is None:
        return default_device()
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise SdxlKitError(f"device {name!r} is not a device torch knows; use {', '.join(DEVICE_KINDS)} "
                           "(with an index like cuda:1 for another GPU)") from None
    available = {"cpu": lambda: True, "cuda": torch.cuda.is_available,
                 "mps": lambda: torch.backends.mps.is_available(), "xpu": lambda: hasattr(torch, "xpu") and torch.xpu.is_available()}
    if device.type not in available:
        raise SdxlKitError(f"device {name!r}: sdxlkit runs on {', '.join(DEVICE_KINDS)}")
    if not available[device.type]():
        build = ", a build without CUDA" if device.type == "cuda" and torch.version.cuda is None else ""
        raise SdxlKitError(f"device {name!r} is not available here (torch {torch.__version__}{build} sees none); use "
                           f"cpu, or leave the device out to use a GPU when there is one")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise SdxlKitError(f"device {name!r}: there are {torch.cuda.device_count()} CUDA device(s), cuda:0 to "
                           f"cuda:{torch.cuda.device_count() - 1}")
    return name


@dataclass
class RunOptions:
    models_dir: Path
    out_dir: Path | None = None
    device: str | None = None
    precision: str = "auto"
    allow_urls: bool = False
    allow_pickle: bool = False
    base_dir: Path | None = None  # for relative image paths in a task file
    memory: str = "auto"  # sdxlkit.loading.residency.MEMORY_MODES
    compile: bool = False  # sdxlkit.loading.compile
    resolve: Resolver | None = None  # (reference, kind) -> file; default: ModelsDir(models_dir).resolve


@dataclass
class PreparedTask:
    task: Task
    spec: ModelSpec
    generation: Any  # sdxlkit.generate.Generation, imported lazily because it pulls in torch
    safety_checker: Path | None = None  # the safety checker's folder when the task asks for the NSFW check


def _resolver(resolve: Resolver, root: str) -> Callable[[str, str, str], Path]:
    """`resolve` whose ModelNotFound names the task field (`$[1].lora[0].model`) the reference came from."""
    def named(ref: str, kind: str, field: str) -> Path:
        try:
            return resolve(ref, kind)
        except ModelNotFound as exc:
            raise ModelNotFound(f"{root}.{field}: {exc}") from None

    return named


def _loras(task: Task, resolve) -> list[tuple[Path, float]]:
    weight = schema.default("lora[].weight")
    return [(resolve(entry["model"], "loras", f"lora[{i}].model"), float(entry.get("weight", weight)))
            for i, entry in enumerate(task.data.get("lora", []))]


def _controls(task: Task, images: dict[str, Image.Image], resolve) -> list:
    from .sampling.window import step_window
    from .generate import ControlRequest

    weight, mode = schema.default("controlNet[].weight"), schema.default("controlNet[].controlMode")
    return [ControlRequest(
        path=resolve(entry["model"], "controlnet", f"controlNet[{i}].model"), image=images[guide_image_key(i)],
        weight=float(entry.get("weight", weight)), mode=entry.get("controlMode", mode),
        window=step_window(task.get("steps"), entry.get("startStep"), entry.get("startStepPercentage"),
                           entry.get("endStep"), entry.get("endStepPercentage")),
    ) for i, entry in enumerate(task.data.get("controlNet", []))]


def _ip_adapters(task: Task, images: dict[str, Image.Image], resolve) -> list:
    """ipAdapters[] with files resolved: the adapter by its id, its CLIP vision encoder by the id's encoder name."""
    from .ipadapter import IPAdapterRequest
    from .registry import IMAGE_ENCODERS

    def option(entry: dict, name: str):
        return entry.get(name, schema.default(f"ipAdapters[].{name}"))

    return [IPAdapterRequest(
        path=resolve(entry["model"], "ipadapter", f"ipAdapters[{i}].model"),
        encoder_path=resolve(IMAGE_ENCODERS[entry["model"]], "clip_vision", f"ipAdapters[{i}].model"),
        images=[images[ip_guide_image_key(i, j)] for j in range(len(entry["guideImages"]))],
        weight=float(option(entry, "weight")), weight_type=option(entry, "weightType"),
        combine_method=option(entry, "combineMethod"), embed_scaling=option(entry, "embedScaling"),
        weight_composition=float(entry.get("weightComposition", 1.0)),  # cubiq's default
    ) for i, entry in enumerate(task.data.get("ipAdapters", []))]


def _hires(task: Task, resolve):
    """hiresFix: true = the documented defaults; steps default to the task's steps."""
    from .hires import HiresFix
    from .task.model import hires_settings
    from .upscale import spandrel

    if not task.has("hiresFix"):
        return None
    spandrel()  # missing or broken: say what to install before any model loads
    settings = hires_settings(task)
    return HiresFix(upscaler=resolve(settings["model"], "upscale_models", "hiresFix.model"), steps=settings["steps"],
                    strength=float(settings["strength"]))


def _faces(task: Task, resolve):
    from .faces import FaceDetailer
    from .faces.yolo import ultralytics
    from .registry import FACE_DETECTOR

    if not task.has("ultralytics"):
        return None
    ultralytics()  # missing or broken: say what to install before any model loads
    return FaceDetailer(
        detector=resolve(*FACE_DETECTOR, "ultralytics"), confidence=float(task.get("ultralytics.confidence")),
        padding=task.get("ultralytics.maskPadding"), blur=task.get("ultralytics.maskBlur"),
        inpaint_size=task.get("ultralytics.inpaintSize"), steps=task.get("ultralytics.steps"),
        cfg=float(task.get("ultralytics.CFGScale")), strength=float(task.get("ultralytics.strength")),
        prompt=task.get("ultralytics.positivePrompt"), negative_prompt=task.get("ultralytics.negativePrompt"))


def _photomaker(task: Task, images: dict[str, Image.Image], resolve):
    from .photomaker.request import PhotoMakerRequest

    if not task.has("photoMaker"):
        return None
    return PhotoMakerRequest(path=resolve(photomaker.DEFAULT_REFERENCE, "photomaker", "photoMaker"),
                             images=[images[photo_key(i)] for i in range(len(task.get("photoMaker.images")))],
                             strength=task.get("photoMaker.strength"))


def _prompts(task: Task) -> tuple[str, str | None]:
    """positivePrompt and negativePrompt, rewritten by PhotoMaker's style template when photoMaker is set."""
    prompt, negative = task.get("positivePrompt"), task.get("negativePrompt")
    if task.has("photoMaker"):
        return photomaker.apply_style(task.get("photoMaker.style"), prompt, negative)
    return prompt, negative


def _embeddings(task: Task, resolve) -> list[tuple[Path, float]]:
    weight = schema.default("embeddings[].weight")
    return [(resolve(entry["model"], "embeddings", f"embeddings[{i}].model"), float(entry.get("weight", weight)))
            for i, entry in enumerate(task.data.get("embeddings", []))]


def _refiner(task: Task, resolve):
    from .refiner import RefinerRequest, switch_step

    if not task.has("refiner"):
        return None
    entry = task.data["refiner"]
    return RefinerRequest(resolve(entry["model"], "checkpoints", "refiner.model"),
                          switch_step(task.get("steps"), entry.get("startStep"), entry.get("startStepPercentage")))


def check_embeddings(generation, root: str = "$") -> None:
    """Read every embedding file before a model loads: SD 1.x/2.x files and repeated tokens are refused here."""
    from .embeddings import EMBEDDING_FILES, PromptEmbeddings
    from .embeddings.inject import repeated_token

    files = [EMBEDDING_FILES.get(path) for path, _ in generation.embeddings]
    repeated = repeated_token(files)
    if repeated:
        i, j = repeated
        raise TaskValidationError([Problem(
            f"{root}.embeddings[{i}].model", f"its file's token {files[i].name!r} is embeddings[{j}]'s too; a prompt "
            "names an embedding by its file name, so each file name must be unique")])
    PromptEmbeddings(list(zip(files, (weight for _, weight in generation.embeddings))))


def generation_for(task: Task, images: dict[str, Image.Image], resolve: Resolver, root: str = "$"):
    from .accelerator import accelerator_request
    from .generate import Generation

    named = _resolver(resolve, root)
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
        loras=_loras(task, named), controls=_controls(task, images, named),
        ip_adapters=_ip_adapters(task, images, named), hires=_hires(task, named), faces=_faces(task, named),
        photomaker=_photomaker(task, images, named), refiner=_refiner(task, named), embeddings=_embeddings(task, named),
        accelerator=accelerator_request(task.data.get("acceleratorOptions"), task.get("steps")),
    )


def _prepared(task: Task, images: dict[str, Image.Image], options: RunOptions, root: str) -> PreparedTask:
    from .safety import checker_for

    device = check_device(options.device)
    checker = checker_for(task.data, Path(options.models_dir))
    resolve_file = options.resolve or ModelsDir(Path(options.models_dir)).resolve
    resolve = _resolver(resolve_file, root)
    spec = ModelSpec(
        checkpoint=resolve(task.get("model"), "checkpoints", "model"),
        vae=resolve(task.get("vae"), "vae", "vae") if task.has("vae") else None,
        precision=options.precision, device=device, allow_pickle=options.allow_pickle, memory=options.memory,
        compile=options.compile,
    )
    generation = generation_for(task, images, resolve_file, root)
    check_embeddings(generation, root)
    return PreparedTask(task, spec, generation, checker)


def _checked_images(task: Task, options: RunOptions, root: str) -> dict[str, Image.Image]:
    return check_task(task, root, base_dir=options.base_dir, allow_urls=options.allow_urls)


def prepare(task: Task, options: RunOptions, root: str = "$") -> PreparedTask:
    """Everything that can fail before a model is loaded: the checks of sdxlkit.runnable, model files, the device."""
    return _prepared(task, _checked_images(task, options, root), options, root)


def generate_task(components, task: Task, images: dict[str, Image.Image], resolve: Resolver,
                  on_step=None) -> list[tuple[Any, int]]:
    """Run a task on already loaded components with already decoded images (the ComfyUI node's path)."""
    from .generate import generate

    check_runnable(task, images)
    generation = generation_for(task, images, resolve)
    check_embeddings(generation)
    return generate(components, generation, on_step)


def run_prepared(prepared: PreparedTask, options: RunOptions, cache: ModelCache = MODEL_CACHE, on_step=None,
                 on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """Each image is encoded (and written, for outputType URL) as soon as it is done, then passed to on_result."""
    from .generate import generate_each, to_pil
    from .results import image_result
    from .safety import nsfw_flags

    results = []
    for image, seed in generate_each(cache.get(prepared.spec), prepared.generation, on_step):
        image = to_pil(image)[0]
        (nsfw,) = nsfw_flags(prepared.safety_checker, [image], prepared.spec.device)
        results.append(image_result(prepared.task, image, seed, options.out_dir, nsfw))
        if on_result is not None:
            on_result(results[-1])
    return results


def run_tasks(tasks: list[Task], options: RunOptions, cache: ModelCache = MODEL_CACHE, on_step=None,
              on_result: Callable[[dict], None] | None = None,
              on_error: Callable[[Task, Exception], None] | None = None) -> list[dict]:
    """Check every task (all problems of all tasks at once), then resolve their models, before running any: a bad
    task in an array stops the run before work is done. With `on_error`, a task that fails while it runs (a file
    that does not fit the model, the device out of memory) is reported to it and the next task runs; the results
    returned are those of the images that finished, on_result having had each of them."""
    if not tasks:
        raise SdxlKitError("no tasks to run")
    roots = [task_root(i, len(tasks)) for i in range(len(tasks))]
    problems, checked = [], []
    for task, root in zip(tasks, roots):
        try:
            checked.append(_checked_images(task, options, root))
        except TaskValidationError as exc:
            problems += exc.problems
    if problems:
        raise TaskValidationError(problems)
    if any(writes_files(task) for task in tasks):
        check_output_folder(options.out_dir)
    prepared = [_prepared(task, images, options, root) for task, images, root in zip(tasks, checked, roots)]
    results = []
    for p in prepared:
        try:
            results += run_prepared(p, options, cache, on_step, on_result)
        except Exception as exc:
            if on_error is None:
                raise
            on_error(p.task, exc)
    return results
