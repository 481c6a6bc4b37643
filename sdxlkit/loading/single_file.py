"""Load an SDXL checkpoint saved as one file in Stability's original key layout (civitai / ComfyUI checkpoints).

Component configs come from the file's safetensors metadata key "sdxlkit.configs" when present (our tiny test and
demo models carry it), else from the SDXL base configs shipped in sdxlkit/data/sdxl_base. Nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from ..errors import ModelLoadError
from .precision import fp16_safe
from .state_dicts import build_model, read_state_dict

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "sdxl_base"
CONFIG_METADATA_KEY = "sdxlkit.configs"
UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_L_PREFIX = "conditioner.embedders.0.transformer."
CLIP_G_PREFIX = "conditioner.embedders.1.model."
_SDXL_MARKERS = (UNET_PREFIX + "label_emb.0.0.weight", CLIP_G_PREFIX + "ln_final.weight", CLIP_L_PREFIX)


def base_configs() -> dict:
    return {name: json.loads((DATA_DIR / f"{name}.json").read_text())
            for name in ("unet", "vae", "text_encoder", "text_encoder_2", "scheduler")}


def _check_sdxl_layout(path: Path, keys: set[str]) -> None:
    if all(any(k.startswith(m) for k in keys) for m in _SDXL_MARKERS):
        return
    if any(k.startswith("cond_stage_model.") for k in keys):
        kind = "an SD 1.x/2.x checkpoint"
    elif any(k.startswith("conditioner.embedders.0.model.") for k in keys):
        kind = "an SDXL refiner checkpoint (it cannot be the base model)"
    elif any(k.startswith("down_blocks.") or k.startswith("unet.") for k in keys):
        kind = "a diffusers-format file, not a single-file checkpoint"
    else:
        kind = "not an SDXL checkpoint"
    raise ModelLoadError(
        f"{path.name}: {kind}. Expected an SDXL base checkpoint in Stability's layout "
        f"(keys {UNET_PREFIX}*, {VAE_PREFIX}*, conditioner.embedders.0/1.*)."
    )


def load_single_file(path: Path, *, dtypes: Callable[[bool], tuple], load_vae: bool = True,
                     allow_pickle: bool = False) -> tuple[dict, dict]:
    """Return (modules, configs). `dtypes(vae_fp16_safe)` gives (model dtype, VAE dtype); modules are unet,
    text_encoder, text_encoder_2 and, with load_vae, vae."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
        convert_open_clip_checkpoint,
    )

    checkpoint, metadata = read_state_dict(path, allow_pickle=allow_pickle)
    _check_sdxl_layout(path, set(checkpoint))
    configs = base_configs()
    if CONFIG_METADATA_KEY in metadata:
        configs.update(json.loads(metadata[CONFIG_METADATA_KEY]))
    model_dtype, vae_dtype = dtypes(fp16_safe(configs["vae"]))

    modules = {
        "unet": build_model(path, "unet", configs["unet"],
                            lambda model: convert_ldm_unet_checkpoint(checkpoint, configs["unet"]), model_dtype),
        "text_encoder": build_model(path, "text_encoder", configs["text_encoder"],
                                    lambda model: convert_ldm_clip_checkpoint(checkpoint, remove_prefix=CLIP_L_PREFIX),
                                    model_dtype),
        "text_encoder_2": build_model(path, "text_encoder_2", configs["text_encoder_2"],
                                      lambda model: convert_open_clip_checkpoint(model, checkpoint, prefix=CLIP_G_PREFIX),
                                      model_dtype),
    }
    if load_vae:
        modules["vae"] = build_model(path, "vae", configs["vae"],
                                     lambda model: convert_ldm_vae_checkpoint(checkpoint, configs["vae"]), vae_dtype)
    return modules, configs
