"""The NSFW check of results: the Stable Diffusion safety checker (CompVis/stable-diffusion-safety-checker, a CLIP
ViT-L/14 image encoder compared with 17 concept and 3 special-care embeddings, diffusers'
StableDiffusionSafetyChecker) run locally on each finished image.

The model lives in models/safety_checker: its files (model.safetensors, with or without config.json and
preprocessor_config.json: the CompVis configs ship in sdxlkit/data/safety_checker) directly there or in one
subfolder of it. Nothing is downloaded. A task asking for the check without the model is refused before anything
runs. The image itself is returned unchanged (diffusers' pipelines black it out); results carry NSFWContent.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..errors import ModelLoadError, ModelNotFound
from ..loading.lru import LruCache, file_key

FOLDER = "safety_checker"
WEIGHTS = "model.safetensors"
DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "safety_checker"
SUGGESTED = "stable-diffusion-safety-checker"


class SafetyModelMissing(ModelNotFound):
    """safety.checkContent asked for, but models/safety_checker holds no safety checker."""


def wants_check(safety: dict | None) -> bool:
    """The task's `safety`: `mode` decides when given ("fast" checks), else `checkContent` (schema: mode overrides)."""
    safety = safety or {}
    return safety["mode"] == "fast" if "mode" in safety else bool(safety.get("checkContent", False))


def find_safety_checker(models_root: Path) -> Path:
    """The folder holding the safety checker's model.safetensors: models/safety_checker or its one subfolder."""
    root = Path(models_root) / FOLDER
    if (root / WEIGHTS).is_file():
        return root
    found = sorted(p for p in root.iterdir() if (p / WEIGHTS).is_file()) if root.is_dir() else []
    if len(found) == 1:
        return found[0]
    if found:
        raise SafetyModelMissing(f"{root} holds several safety checkers ({', '.join(p.name for p in found)}); keep one")
    raise SafetyModelMissing(
        f"safety.checkContent needs the Stable Diffusion safety checker and {root} has none: put the model.safetensors "
        f"of CompVis/stable-diffusion-safety-checker (its config.json and preprocessor_config.json are optional) into "
        f"{root / SUGGESTED}/, or remove safety from the task")


def checker_for(task_data: dict, models_root: Path) -> Path | None:
    """The safety checker's folder when the task asks for the check (refused here without the model), else None."""
    return find_safety_checker(models_root) if wants_check(task_data.get("safety")) else None


def _config(folder: Path, name: str) -> Path:
    return folder / name if (folder / name).is_file() else DATA_DIR / name


class SafetyChecker:
    """The loaded checker: `check(images)` -> one NSFW flag per PIL image."""

    def __init__(self, folder: Path, device: str = "cpu"):
        from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
        from transformers import CLIPConfig, CLIPImageProcessor

        config = CLIPConfig.from_dict(json.loads(_config(folder, "config.json").read_text()))
        try:
            self.model = StableDiffusionSafetyChecker.from_pretrained(str(folder), config=config, local_files_only=True,
                                                                      use_safetensors=True)
        except Exception as exc:
            raise ModelLoadError(f"{folder / WEIGHTS}: cannot be loaded as the Stable Diffusion safety checker "
                                 f"({type(exc).__name__}: {exc})") from None
        self.model.eval().requires_grad_(False).to(device)
        # its "a black image will be returned" warning is untrue here: the results are kept, NSFWContent says it
        logging.getLogger(StableDiffusionSafetyChecker.__module__).setLevel(logging.ERROR)
        self.processor = CLIPImageProcessor.from_pretrained(str(_config(folder, "preprocessor_config.json").parent),
                                                            local_files_only=True)
        self.device = device

    def check(self, images) -> list[bool]:
        import numpy as np
        import torch

        pixels = self.processor(images=[image.convert("RGB") for image in images], return_tensors="pt").pixel_values
        with torch.no_grad():
            # the checker blacks out flagged images in place: hand it stand-ins, the results stay as they are
            _, flags = self.model(clip_input=pixels.to(self.device, self.model.dtype), images=[np.zeros(1)] * len(images))
        return [bool(flag) for flag in flags]


class SafetyCheckers(LruCache):
    def get(self, folder: Path, device: str = "cpu") -> SafetyChecker:
        return self.get_or_make(file_key(Path(folder) / WEIGHTS, "safety checker") + (device,),
                                lambda: SafetyChecker(folder, device))


SAFETY_CHECKERS = SafetyCheckers(capacity=1)


def nsfw_flags(folder: Path | None, images: list, device: str = "cpu") -> list[bool | None]:
    """NSFWContent for each PIL image by the checker in `folder`; None for each when no check was asked for."""
    return [None] * len(images) if folder is None else SAFETY_CHECKERS.get(folder, device).check(images)
