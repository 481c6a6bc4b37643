"""The shipped examples. Each task twin in example_tasks/<name>.task.json gives:
- example_workflows/<title>.json: the UI workflow; ComfyUI's template browser lists this folder (*.json only), by
  file name, so the title is the file name, numbered in reading order; <title>.jpg is its card's thumbnail;
- example_api/<name>.api.json: the API prompt (a folder the browser does not list).

Twins carry their images as PNG data URIs, so they import and run as shipped by drop, file picker, CLI and the
task route. The UI workflows read the same images from example_workflows/input/ by readable names (copy those
files into ComfyUI's input folder); both forms convert to each other exactly. A twin written with file paths
(relative to example_tasks/) has them inlined on regeneration. Model ids become the file names the models folder
maps them to (sdxlkit_models.json defaults, e.g. civitai:101055@128078 -> sd_xl_base_1.0_0.9vae.safetensors).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from ..images import data_uri, load_image, to_mask, to_rgb
from ..registry import FACE_DETECTOR, FOLDERS, IMAGE_ENCODERS, ModelsDir
from ..task.model import HIRES_DEFAULTS
from ..results import write_atomic
from .convert import tasks_to_api, tasks_to_workflow
from .images import png_bytes
from .mapping import ConvertOptions

WORKFLOWS, INPUT, TASKS, API = "example_workflows", "example_workflows/input", "example_tasks", "example_api"
EXAMPLES = {  # twin name -> template title (the workflow's file name)
    "txt2img": "SDXL 1 - Text to image",
    "img2img": "SDXL 2 - Image to image",
    "inpaint": "SDXL 3 - Inpaint",
    "outpaint": "SDXL 4 - Outpaint",
    "lora_stack": "SDXL 5 - LoRA stack",
    "controlnet_balanced": "SDXL 6 - ControlNet, balanced",
    "controlnet_prompt": "SDXL 7 - ControlNet, prompt more important",
    "controlnet_controlnet": "SDXL 8 - ControlNet, ControlNet more important",
    "ipadapter_style_transfer": "SDXL 9 - IP-Adapter, style transfer",
    "ipadapter_two_images": "SDXL 10 - IP-Adapter, two guide images",
    "photomaker_style": "SDXL 11 - PhotoMaker, Comic book style",
    "hires_fix": "SDXL 12 - Hires fix",
    "face_detailer": "SDXL 13 - Face detailer",
    "refiner_embedding": "SDXL 14 - Refiner with an embedding",
    "accelerator_cache": "SDXL 15 - Accelerator cache (DeepCache)",
}
KINDS = {"model": "checkpoints", "vae": "vae"}


def _referenced(task: dict) -> list[tuple[str, str]]:
    refs = [(task[field], kind) for field, kind in KINDS.items() if field in task]
    refs += [(entry["model"], "loras") for entry in task.get("lora", [])]
    refs += [(entry["model"], "controlnet") for entry in task.get("controlNet", [])]
    for entry in task.get("ipAdapters", []):
        refs += [(entry["model"], "ipadapter"), (IMAGE_ENCODERS[entry["model"]], "clip_vision")]
    if "hiresFix" in task:
        fix = task["hiresFix"] if isinstance(task["hiresFix"], dict) else HIRES_DEFAULTS
        refs.append((fix["model"], "upscale_models"))
    if "ultralytics" in task:
        refs.append(FACE_DETECTOR)
    refs += [(task["refiner"]["model"], "checkpoints")] if "refiner" in task else []
    refs += [(entry["model"], "embeddings") for entry in task.get("embeddings", [])]
    return refs


def required_models(task: dict, root: Path) -> list[str]:
    """The model files a task needs, relative to a models folder (its mapped ids resolved)."""
    mapping = ModelsDir(root).mapping()
    return [mapping[ref] if ref in mapping else f"{FOLDERS.get(kind, (kind,))[0]}/{ref}" for ref, kind in _referenced(task)]


def placeholder_models(task: dict, root: Path) -> Path:
    """A models folder where every model the task names exists (empty files): conversion only needs the names."""
    for rel in required_models(task, root):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).touch()
    return root


def image_fields(task: dict) -> list[tuple[dict, str, bool]]:
    """(holder, key, is_mask) for each image reference of a task."""
    found = [(task["inputs"], key, key == "maskImage") for key in ("seedImage", "maskImage") if key in task.get("inputs", {})]
    found += [(entry, "guideImage", False) for entry in task.get("controlNet", [])]
    found += [(entry["guideImages"], j, False) for entry in task.get("ipAdapters", [])
              for j in range(len(entry["guideImages"]))]
    photos = task.get("photoMaker", {}).get("images", [])
    return found + [(photos, j, False) for j in range(len(photos))]


def _engine_png(image, mask: bool) -> bytes:
    return png_bytes(to_mask(image) if mask else to_rgb(image))


def inline_images(task: dict, base_dir: Path) -> dict:
    """The task with each image as the PNG data URI of what the engine reads from it."""
    task = json.loads(json.dumps(task))
    for holder, key, mask in image_fields(task):
        image = load_image(holder[key], key, base_dir=base_dir)
        holder[key] = data_uri(_engine_png(image, mask), "PNG")
    return task


def image_names(folder: Path) -> dict[str, str]:
    """sha256 of the PNG the converter writes for an image -> the readable file of `folder` holding it."""
    names = {}
    for path in sorted(folder.glob("*.png")):
        image = load_image(str(path), path.name)
        for mask in (False, True):
            names.setdefault(hashlib.sha256(_engine_png(image, mask)).hexdigest(), path.name)
    return names


def example_options(root: Path, models: Path, images: str = "data_uri") -> ConvertOptions:
    return ConvertOptions(input_dir=root / INPUT, models_dir=models, base_dir=root / TASKS, images=images,
                          image_names=image_names(root / INPUT))


def _write_json(path: Path, document) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (json.dumps(document, indent=2) + "\n").encode("utf-8"))
    return path


def write_examples(root: Path) -> list[Path]:
    from .example_thumbnail import thumbnail

    written = []
    for name, title in EXAMPLES.items():
        twin = root / TASKS / f"{name}.task.json"
        task = inline_images(json.loads(twin.read_text(encoding="utf-8")), root / TASKS)
        with tempfile.TemporaryDirectory() as models:
            options = example_options(root, placeholder_models(task, Path(models)))
            written += [_write_json(twin, task),
                        _write_json(root / WORKFLOWS / f"{title}.json", tasks_to_workflow(task, options)),
                        _write_json(root / API / f"{name}.api.json", tasks_to_api(task, options))]
        path = root / WORKFLOWS / f"{title}.jpg"
        write_atomic(path, thumbnail(task, title))
        written.append(path)
    return written
