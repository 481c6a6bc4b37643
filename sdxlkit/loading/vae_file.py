"""Load an external SDXL VAE: a single .safetensors file (Stability or diffusers key names) or a diffusers VAE folder."""

from __future__ import annotations

import json
from pathlib import Path

from .precision import fp16_safe
from .single_file import CONFIG_METADATA_KEY, base_configs
from .state_dicts import build_model, read_state_dict

_FP16_FIX_NAMES = ("fp16-fix", "fp16_fix", "fp16fix")


def vae_is_fp16_safe(path: Path, config: dict) -> bool:
    """Known fp16-safe: the config says no upcast is needed, or the file is named as madebyollin's fp16-fix VAE."""
    return fp16_safe(config) or any(tag in Path(path).name.lower() for tag in _FP16_FIX_NAMES)


def load_vae_file(path: Path, *, dtypes, allow_pickle: bool = False):
    """Return (vae module, fp16-safe flag). `dtypes(fp16_safe)` gives (model dtype, VAE dtype)."""
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    path = Path(path)
    if path.is_dir():
        from .diffusers_folder import load_part

        config = json.loads((path / "config.json").read_text())
        safe = vae_is_fp16_safe(path, config)
        return load_part(path, "vae", dtypes(safe)[1]), safe
    tensors, metadata = read_state_dict(path, allow_pickle=allow_pickle)
    config = base_configs()["vae"]
    if CONFIG_METADATA_KEY in metadata:
        config = json.loads(metadata[CONFIG_METADATA_KEY]).get("vae", config)
    safe = vae_is_fp16_safe(path, config)
    diffusers_keys = any(k.startswith("decoder.up_blocks.") for k in tensors)
    convert = (lambda model: tensors) if diffusers_keys else (lambda model: convert_ldm_vae_checkpoint(tensors, config))
    return build_model(path, "vae", config, convert, dtypes(safe)[1]), safe
