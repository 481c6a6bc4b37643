"""The example workflows in workflows/: each <name>.task.json twin gives <name>.json (UI format) and <name>.api.json.

Images are referenced by their names in workflows/assets (copy those files into ComfyUI's input folder); model ids
become the file names the models folder maps them to (sdxlkit_models.json defaults, e.g. civitai:101055@128078 ->
sd_xl_base_1.0_0.9vae.safetensors), and LoRA file names stay as they are.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ..registry import ModelsDir
from .convert import tasks_to_api, tasks_to_workflow
from .mapping import ConvertOptions

KINDS = {"model": "checkpoints", "vae": "vae"}


def _referenced(task: dict) -> list[tuple[str, str]]:
    refs = [(task[field], kind) for field, kind in KINDS.items() if field in task]
    refs += [(entry["model"], "loras") for entry in task.get("lora", [])]
    refs += [(entry["model"], "controlnet") for entry in task.get("controlNet", [])]
    return refs


def placeholder_models(task: dict, root: Path) -> Path:
    """A models folder where every model the task names exists (empty files): conversion only needs the names."""
    mapping = ModelsDir(root).mapping()
    for ref, kind in _referenced(task):
        path = root / mapping[ref] if ref in mapping else root / kind / ref
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    return root


def example_options(workflows: Path, models: Path, images: str = "data_uri") -> ConvertOptions:
    return ConvertOptions(input_dir=workflows / "assets", models_dir=models, base_dir=workflows, images=images)


def write_examples(workflows: Path) -> list[Path]:
    written = []
    for twin in sorted(workflows.glob("*.task.json")):
        task = json.loads(twin.read_text(encoding="utf-8"))
        name = twin.name.removesuffix(".task.json")
        with tempfile.TemporaryDirectory() as models:
            options = example_options(workflows, placeholder_models(task, Path(models)))
            for path, document in ((workflows / f"{name}.json", tasks_to_workflow(task, options)),
                                   (workflows / f"{name}.api.json", tasks_to_api(task, options))):
                path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
                written.append(path)
    return written
