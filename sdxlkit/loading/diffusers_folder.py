"""Load an SDXL model saved as a diffusers folder (model_index.json with unet/, vae/, text_encoder*/, scheduler/).

A refiner folder (stabilityai/stable-diffusion-xl-refiner-1.0) has no text_encoder/: only text_encoder_2/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from ..errors import ModelLoadError
from .precision import fp16_safe
from .single_file import BASE, REFINER, Role, wrong_role


def is_diffusers_folder(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / "model_index.json").is_file()


def load_part(path: Path, part: str, dtype):
    """One component folder (config.json + weights) as the SDXL `part` (unet, vae, text_encoder, text_encoder_2)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    cls = {"unet": UNet2DConditionModel, "vae": AutoencoderKL, "text_encoder": CLIPTextModel,
           "text_encoder_2": CLIPTextModelWithProjection}[part]
    dtype_arg = {"dtype": dtype} if part.startswith("text_encoder") else {"torch_dtype": dtype}
    try:
        model = cls.from_pretrained(str(path), local_files_only=True, **dtype_arg)
    except Exception as exc:
        raise ModelLoadError(f"{path}: cannot be loaded as an SDXL {part} ({type(exc).__name__}: {exc})") from None
    return model.eval().requires_grad_(False)


def folder_role(folder: Path) -> Role:
    return REFINER if not (folder / "text_encoder").is_dir() and (folder / "text_encoder_2").is_dir() else BASE


def load_diffusers_folder(folder: Path, *, dtypes: Callable[[bool], tuple], load_vae: bool = True,
                          role: Role = BASE) -> tuple[dict, dict]:
    """Return (modules, configs) like load_single_file."""
    folder = Path(folder)
    if (folder / "unet").is_dir() and folder_role(folder) is not role:
        raise wrong_role(folder, folder_role(folder).name, role)
    missing = [p for p in ("unet", "vae", *role.encoders, "scheduler") if not (folder / p).is_dir()]
    if missing:
        raise ModelLoadError(f"{folder.name}: not an SDXL {role.name} diffusers folder, missing {', '.join(missing)}/")
    scheduler_config = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    vae_config = json.loads((folder / "vae" / "config.json").read_text())
    model_dtype, vae_dtype = dtypes(fp16_safe(vae_config))
    modules = {part: load_part(folder / part, part, model_dtype) for part in ("unet", *role.encoders)}
    if load_vae:
        modules["vae"] = load_part(folder / "vae", "vae", vae_dtype)
    return modules, {"scheduler": scheduler_config, "vae": vae_config}
