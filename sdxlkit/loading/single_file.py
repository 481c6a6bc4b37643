"""Load an SDXL checkpoint saved as one file in Stability's original key layout (civitai / ComfyUI checkpoints).

Two roles share the layout: the base model (CLIP-L as conditioner.embedders.0, OpenCLIP bigG as embedders.1) and
the refiner (OpenCLIP bigG alone as conditioner.embedders.0, a 4-level 1536-channel UNet conditioned on an
aesthetic score). Component configs come from the file's safetensors metadata key "sdxlkit.configs" when present
(our tiny test and demo models carry it), else from the configs shipped in sdxlkit/data/sdxl_base or sdxl_refiner
(stabilityai/stable-diffusion-xl-base-1.0 and -refiner-1.0). Nothing is downloaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import ModelLoadError
from .precision import fp16_safe
from .state_dicts import build_model, read_state_dict

DATA_ROOT = Path(__file__).resolve().parent.parent / "data"
CONFIG_METADATA_KEY = "sdxlkit.configs"
UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_L_PREFIX = "conditioner.embedders.0.transformer."
CLIP_G_PREFIX = "conditioner.embedders.1.model."
REFINER_CLIP_G_PREFIX = "conditioner.embedders.0.model."


@dataclass(frozen=True)
class Role:
    """Base model or refiner: which text encoders the file holds (module -> key prefix) and where its configs are."""

    name: str
    encoders: dict
    data_dir: str

    def markers(self) -> tuple[str, ...]:
        return (UNET_PREFIX + "label_emb.0.0.weight", *self.encoders.values())

    def configs(self) -> dict:
        folder = DATA_ROOT / self.data_dir
        return {name: json.loads((folder / f"{name}.json").read_text())
                for name in ("unet", "vae", *self.encoders, "scheduler")}


BASE = Role("base", {"text_encoder": CLIP_L_PREFIX, "text_encoder_2": CLIP_G_PREFIX}, "sdxl_base")
REFINER = Role("refiner", {"text_encoder_2": REFINER_CLIP_G_PREFIX}, "sdxl_refiner")
ROLES = {role.name: role for role in (BASE, REFINER)}
_USE = {"base": "the model field / SDXL Loader", "refiner": "refiner.model / SDXL Refiner node"}


def base_configs() -> dict:
    return BASE.configs()


def role_of(keys: set[str]) -> Role | None:
    """The SDXL role whose layout `keys` has (the refiner has no CLIP-L), or None."""
    for role in (BASE, REFINER):
        if all(any(k.startswith(m) for k in keys) for m in role.markers()):
            if role is REFINER and any(k.startswith(CLIP_L_PREFIX) for k in keys):
                continue
            return role
    return None


def wrong_role(path: Path, found: str, wanted: Role) -> ModelLoadError:
    return ModelLoadError(f"{Path(path).name}: this is an SDXL {found} checkpoint, not an SDXL {wanted.name}; "
                          f"load it through {_USE[found]}")


def _check_sdxl_layout(path: Path, keys: set[str], wanted: Role) -> None:
    found = role_of(keys)
    if found is wanted:
        return
    if found is not None:
        raise wrong_role(path, found.name, wanted)
    if any(k.startswith("cond_stage_model.") for k in keys):
        kind = "an SD 1.x/2.x checkpoint"
    elif any(k.startswith("down_blocks.") or k.startswith("unet.") for k in keys):
        kind = "a diffusers-format file, not a single-file checkpoint"
    else:
        kind = "not an SDXL checkpoint"
    raise ModelLoadError(
        f"{path.name}: {kind}. Expected an SDXL {wanted.name} checkpoint in Stability's layout "
        f"(keys {UNET_PREFIX}*, {VAE_PREFIX}*, {', '.join(p + '*' for p in wanted.encoders.values())})."
    )


def load_single_file(path: Path, *, dtypes: Callable[[bool], tuple], load_vae: bool = True,
                     allow_pickle: bool = False, role: Role = BASE) -> tuple[dict, dict]:
    """Return (modules, configs). `dtypes(vae_fp16_safe)` gives (model dtype, VAE dtype); modules are unet, the
    role's text encoders (base: text_encoder and text_encoder_2; refiner: text_encoder_2) and, with load_vae, vae."""
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
        convert_open_clip_checkpoint,
    )

    checkpoint, metadata = read_state_dict(path, allow_pickle=allow_pickle)
    _check_sdxl_layout(path, set(checkpoint), role)
    configs = role.configs()
    if CONFIG_METADATA_KEY in metadata:
        configs.update(json.loads(metadata[CONFIG_METADATA_KEY]))
    model_dtype, vae_dtype = dtypes(fp16_safe(configs["vae"]))

    converters = {
        "unet": lambda model: convert_ldm_unet_checkpoint(checkpoint, configs["unet"]),
        "text_encoder": lambda model: convert_ldm_clip_checkpoint(checkpoint, remove_prefix=CLIP_L_PREFIX),
        "text_encoder_2": lambda model: convert_open_clip_checkpoint(model, checkpoint,
                                                                     prefix=role.encoders["text_encoder_2"]),
    }
    modules = {name: build_model(path, name, configs[name], converters[name], model_dtype)
               for name in ("unet", *role.encoders)}
    if load_vae:
        modules["vae"] = build_model(path, "vae", configs["vae"],
                                     lambda model: convert_ldm_vae_checkpoint(checkpoint, configs["vae"]), vae_dtype)
    return modules, configs
