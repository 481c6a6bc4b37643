"""Every check of a task that needs no model file, in one place for `sdxlkit run`, `sdxlkit validate`, `sdxlkit
convert`, the task route and the ComfyUI node, so that they refuse the same tasks with the same messages: fields
this engine cannot run yet, scheduler names with no faithful mapping, adapter options SDXL has no use for, image
inputs and their geometry. Each problem names its JSON path (``$.scheduler``, ``$[1].inputs.seedImage``)."""

from __future__ import annotations

import copy
import math

from pathlib import Path
from typing import Any

from PIL import Image

from .errors import ImageInputError, Problem, TaskValidationError, UnsupportedScheduler
from .images import file_reference, load_image, to_mask, to_rgb
from .task import schema
from .task.model import Task

URL_PREFIXES = ("http://", "https://")
SDXL_DOWN_BLOCKS = 3
MAX_ENCODER_IMAGE_ASPECT = 32


def task_root(index: int, count: int) -> str:
    """The JSON path of task `index` of `count` read from one file: "$" for a lone task, "$[i]" in an array."""
    return "$" if count == 1 else f"$[{index}]"


def guide_image_key(index: int) -> str:
    return f"controlNet[{index}].guideImage"


def ip_guide_image_key(adapter: int, image: int) -> str:
    return f"ipAdapters[{adapter}].guideImages[{image}]"


def photo_key(index: int) -> str:
    return f"photoMaker.images[{index}]"


def _image_slots(data: dict) -> list[tuple[str, Any, Any]]:
    """(field path, container, key) of every image a task's JSON reads: its reference is container[key]."""
    inputs = data.get("inputs", {})
    slots = [(f"inputs.{name}", inputs, name) for name in ("seedImage", "maskImage") if name in inputs]
    slots += [(guide_image_key(i), c, "guideImage") for i, c in enumerate(data.get("controlNet", []))]
    slots += [(ip_guide_image_key(i, j), a["guideImages"], j) for i, a in enumerate(data.get("ipAdapters", []))
              for j in range(len(a["guideImages"]))]
    images = data.get("photoMaker", {}).get("images", [])
    return slots + [(photo_key(i), images, i) for i in range(len(images))]


def image_references(task: Task) -> list[tuple[str, str]]:
    """(field path, reference) of every image a task reads."""
    return [(field, container[key]) for field, container, key in _image_slots(task.data)]


def with_absolute_image_paths(data: dict, base_dir: Path | None) -> dict:
    """A copy of `data` in which each image given as a relative file path is absolute, as run reads it: the task
    an output image carries then runs again from any folder."""
    data = copy.deepcopy(data)
    for _, container, key in _image_slots(data):
        ref = container[key]
        path = file_reference(ref, base_dir)
        if path is not None and not Path(ref.removeprefix("file://")).expanduser().is_absolute():
            container[key] = str(path.resolve())
    return data


def _not_executable(task: Task, root: str) -> list[Problem]:
    # "deliveryMethod=async" names a field and the value that cannot run
    return [Problem(f"{root}.{name.partition('=')[0]}",
                    f"not supported yet: this version of sdxlkit cannot run {name}; remove it to run the task",
                    "unsupportedParameter")
            for name in task.not_executable_fields()]


def _scheduler(task: Task, root: str) -> list[Problem]:
    from .schedulers import check_scheduler

    try:
        check_scheduler(task.get("scheduler"))
    except UnsupportedScheduler as exc:
        return [Problem(f"{root}.scheduler", str(exc), "unsupportedScheduler")]
    return []


def _adapters(task: Task, root: str) -> list[Problem]:
    """`transformer` picks a stage of two-stage (video) models; SDXL has one, so only "both" means something."""
    both = schema.default("lora[].transformer")
    return [Problem(f"{root}.lora[{i}].transformer", f"got {entry['transformer']!r}; SDXL has a single denoiser stage, "
                    f"so only {both!r} (the default) applies: use {both!r} or leave the field out")
            for i, entry in enumerate(task.data.get("lora", [])) if entry.get("transformer", both) != both]


def _photomaker(task: Task, root: str) -> list[Problem]:
    """PhotoMaker finds the person through its trigger word in the prompt, at token level (plain or sdEmbeds
    prompts): a prompt without it would silently lose the identity the task asks for, so it is refused. The face
    detailer repaints faces with the identity too, so its own prompt, when given, needs the trigger word as well."""
    if not task.has("photoMaker"):
        return []
    from .loading.tokenizers import load_clip_tokenizers
    from .photomaker.prompt import trigger_error

    weighting = task.get("promptWeighting")
    if task.data.get("embeddings"):
        return [Problem(f"{root}.embeddings", "textual inversions cannot be combined with photoMaker yet (PhotoMaker "
                                              "rebuilds the prompt's tokens itself): remove one of the two")]
    if weighting == "compel":
        return [Problem(f"{root}.promptWeighting", "PhotoMaker works on the prompt's tokens, which compel builds "
                                                   "itself: use 'sdEmbeds' or no promptWeighting with photoMaker")]
    tokenizer = load_clip_tokenizers()[0]
    error = trigger_error(tokenizer, task.get("positivePrompt"), weighting)
    problems = [Problem(f"{root}.positivePrompt", error)] if error else []
    face_prompt = task.get("ultralytics.positivePrompt")  # empty or absent: the face pass uses positivePrompt
    error = trigger_error(tokenizer, face_prompt, weighting) if face_prompt else None
    if error:
        problems.append(Problem(f"{root}.ultralytics.positivePrompt", "with photoMaker the face detailer repaints "
                                "faces with the identity, so its prompt needs the trigger word as positivePrompt "
                                f"does (or leave it out to use positivePrompt): {error}"))
    return problems


PROMPT_FIELDS = ("positivePrompt", "negativePrompt", "ultralytics.positivePrompt", "ultralytics.negativePrompt")


def _prompt_syntax(task: Task, root: str) -> list[Problem]:
    """Prompts the task's weighting cannot parse (an A1111 weight that is no number, a compel blend with fewer
    weights than prompts), the face detailer's included: found here, not after the models load."""
    from .errors import SdxlKitError
    from .prompts.a1111 import parse_a1111
    from .prompts.compel_backend import compel_syntax_error

    weighting = task.get("promptWeighting")
    if weighting not in ("sdEmbeds", "compel"):
        return []
    problems = []
    for name in PROMPT_FIELDS:
        text = task.get(name) if task.has(name) else None
        if not isinstance(text, str):
            continue
        if weighting == "compel":
            error = compel_syntax_error(text)
        else:
            try:
                parse_a1111(text)
                error = None
            except SdxlKitError as exc:
                error = str(exc)
        if error:
            problems.append(Problem(f"{root}.{name}", error))
    return problems


def _refiner_scheduler(task: Task, root: str) -> list[Problem]:
    """The refiner hand-off cuts the schedule at a whole timestep (diffusers' denoising_end / denoising_start): it
    falls inside a step of a scheduler whose steps evaluate the UNet at two timesteps, and finds no place between
    two steps whose timesteps are less than one apart (checked on SDXL base's scheduler config)."""
    from .loading.single_file import base_configs
    from .refiner.switch import cut_problem, step_timesteps, switch_step
    from .schedulers import accepted, evaluates_twice_per_step

    name = task.get("scheduler")
    if not task.has("refiner") or not accepted(name):
        return []  # a name sdxlkit does not run is reported by _scheduler, with its path
    if evaluates_twice_per_step(name):
        return [Problem(f"{root}.scheduler", f"{name!r} evaluates the UNet twice per step, at two noise levels, and "
                        "the refiner's hand-off would fall between the two: with a refiner use a scheduler of one "
                        "evaluation per step (Euler, DPM++ 2M, UniPC, ...)")]
    steps = task.get("steps")
    switch = switch_step(steps, task.get("refiner.startStep"), task.get("refiner.startStepPercentage"))
    if not 0 < switch < steps:
        return []  # the switch's own range is checked with the task's fields
    problem = cut_problem(step_timesteps(name, base_configs()["scheduler"], steps), steps, switch, name)
    return [Problem(f"{root}.refiner", problem)] if problem else []


def _post_pass_schedules(task: Task, root: str) -> list[Problem]:
    """The hires and face passes run exactly their steps at their strength, on a schedule of about steps / strength
    (schedule_for), which must fit the scheduler."""
    from .schedulers import longest_schedule, schedule_for
    from .task.model import hires_settings

    passes = []
    if task.has("hiresFix"):
        fix = hires_settings(task)
        passes.append(("hiresFix", fix["steps"], fix["strength"]))
    if task.has("ultralytics"):
        passes.append(("ultralytics", task.get("ultralytics.steps"), task.get("ultralytics.strength")))
    most = longest_schedule(task.get("scheduler"))
    return [Problem(f"{root}.{name}.strength", f"got {strength}: {steps} steps at strength {strength} need a "
                    f"{schedule_for(steps, strength)}-step schedule, but {task.get('scheduler')!r} takes at most {most}; "
                    f"raise {name}.strength to at least {math.ceil(steps / most * 100) / 100} or lower {name}.steps")
            for name, steps, strength in passes if strength > 0 and schedule_for(steps, strength) > most]


def _accelerator(task: Task, root: str) -> list[Problem]:
    """DeepCache branches name layers of the U: 3 per down block, SDXL has 3."""
    from .accelerator.deep_cache import LAYERS_PER_BLOCK

    branch, most = task.get("acceleratorOptions.deepCacheBranchId"), LAYERS_PER_BLOCK * SDXL_DOWN_BLOCKS - 1
    if task.has("acceleratorOptions") and branch > most:
        return [Problem(f"{root}.acceleratorOptions.deepCacheBranchId", f"got {branch}; SDXL's UNet has DeepCache "
                        f"branches 0..{most} (3 per down block; 0 caches the most, {most} only the middle block)")]
    return []


def field_problems(task: Task, root: str = "$") -> list[Problem]:
    """What this engine cannot run yet, unmappable schedulers, adapter options SDXL has no use for, prompts
    PhotoMaker cannot find its person in, compel prompts compel cannot parse and DeepCache branches SDXL does not
    have."""
    return (_not_executable(task, root) + _scheduler(task, root) + _adapters(task, root) + _photomaker(task, root)
            + _prompt_syntax(task, root) + _post_pass_schedules(task, root) + _refiner_scheduler(task, root)
            + _accelerator(task, root))


def geometry_problems(task: Task, images: dict[str, Image.Image], root: str = "$") -> list[Problem]:
    """Sizes the images must agree on, and shapes an image encoder takes (only for the images given: an unread image
    is checked by whoever reads it)."""
    problems = []
    seed = images.get("seedImage")
    width, height = task.get("width"), task.get("height")
    if seed is not None and task.has("outpaint"):
        o = task.data["outpaint"]
        grown = (seed.width + o.get("left", 0) + o.get("right", 0), seed.height + o.get("top", 0) + o.get("bottom", 0))
        if grown != (width, height):
            problems.append(Problem(
                f"{root}.outpaint", f"inputs.seedImage {seed.width}x{seed.height} extended by left/right/top/bottom "
                f"gives {grown[0]}x{grown[1]}, but width x height is {width}x{height}; they must be equal"))
    mask = images.get("maskImage")
    if mask is not None and seed is not None and mask.size != seed.size:
        problems.append(Problem(f"{root}.inputs.maskImage", f"is {mask.width}x{mask.height} but inputs.seedImage is "
                                                            f"{seed.width}x{seed.height}; they must have the same size"))
    return problems + _encoder_image_problems(images, root)


def _encoder_image_problems(images: dict[str, Image.Image], root: str) -> list[Problem]:
    """IP-Adapter and PhotoMaker images are resized to 224 on their shorter side before their centre is cut out: a
    thin strip would grow without bound (16384x4 to 917504x224) for 224 columns used."""
    return [Problem(f"{root}.{field}", f"is {image.width}x{image.height}; its longer side may be at most "
                    f"{MAX_ENCODER_IMAGE_ASPECT} times its shorter side (it is resized to 224 on its shorter side and "
                    "its centre 224x224 is used): crop it to the part that shows the subject", "invalidImage")
            for field, image in images.items()
            if field.startswith(("ipAdapters[", "photoMaker.images["))
            and max(image.size) > MAX_ENCODER_IMAGE_ASPECT * min(image.size)]


def read_images(task: Task, root: str = "$", *, base_dir: Path | None = None, allow_urls: bool = False,
                skip_urls: bool = False) -> tuple[dict[str, Image.Image], list[Problem]]:
    """The task's images, decoded (keys "seedImage", "maskImage", "controlNet[i].guideImage",
    "ipAdapters[i].guideImages[j]", "photoMaker.images[i]"), and a problem for
    each that cannot be read. `skip_urls` leaves http(s) images out unread (`validate` does not download)."""
    images, problems = {}, []
    for field, ref in image_references(task):
        if skip_urls and ref.startswith(URL_PREFIXES):
            continue
        try:
            image = load_image(ref, field, allow_urls=allow_urls, base_dir=base_dir)
        except ImageInputError as exc:
            problems.append(Problem(f"{root}.{field}", str(exc).removeprefix(f"{field}: "), "invalidImage"))
            continue
        images[field.removeprefix("inputs.")] = to_mask(image) if field == "inputs.maskImage" else to_rgb(image)
    return images, problems


def check_runnable(task: Task, images: dict[str, Image.Image], root: str = "$") -> None:
    """For images already decoded (the ComfyUI node): every field and geometry problem at once."""
    problems = field_problems(task, root) + geometry_problems(task, images, root)
    if problems:
        raise TaskValidationError(problems)


def check_task(task: Task, root: str = "$", *, base_dir: Path | None = None, allow_urls: bool = False,
               skip_urls: bool = False) -> dict[str, Image.Image]:
    """Every check that needs no model file, every problem reported at once; returns the decoded images."""
    images, image_problems = read_images(task, root, base_dir=base_dir, allow_urls=allow_urls, skip_urls=skip_urls)
    problems = field_problems(task, root) + image_problems + geometry_problems(task, images, root)
    if problems:
        raise TaskValidationError(problems)
    return images
