"""Load an SDXL model (single file or diffusers folder, optional external VAE) into SDXLComponents.

`ModelSpec.role` says what the file must be: "base" (the model field) or "refiner" (refiner.model). A refiner is
loaded without its VAE (the base model's VAE decodes: the two share SDXL's latent space) and without CLIP-L.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ..errors import ModelNotFound
from .compile import compile_unet
from .components import SDXLComponents
from .diffusers_folder import is_diffusers_folder, load_diffusers_folder
from .precision import fp16_safe, resolve_dtypes
from .residency import MEMORY_MODES, place_parts
from .single_file import ROLES, load_single_file
from .tokenizers import load_clip_tokenizers
from .vae_file import load_vae_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """What to load; also the cache key (with the files' size and mtime, so a replaced file is reloaded)."""

    checkpoint: Path
    vae: Path | None = None
    precision: str = "auto"
    device: str = "cpu"
    allow_pickle: bool = False
    role: str = "base"
    memory: str = "auto"  # residency.MEMORY_MODES
    compile: bool = False  # compile.py

    def __post_init__(self):
        if self.memory not in MEMORY_MODES:
            raise ValueError(f"memory mode {self.memory!r}; allowed: {', '.join(MEMORY_MODES)}")
        if self.compile and self.memory == "lowvram":
            raise ValueError("compile and lowvram cannot be combined: lowvram streams each layer's weights in as it "
                             "runs, which compiled blocks cannot trace; pick one")

    def cache_key(self) -> tuple:
        def stamp(p: Path | None):
            if p is None:
                return None
            st = Path(p).stat()
            return (str(Path(p).resolve()), st.st_size, st.st_mtime_ns)

        return (stamp(self.checkpoint), stamp(self.vae), self.precision, self.device, self.allow_pickle, self.role,
                self.memory, self.compile)


def load_sdxl(spec: ModelSpec) -> SDXLComponents:
    for path in (spec.checkpoint, spec.vae):
        if path is not None and not Path(path).exists():
            raise ModelNotFound(f"{path}: no such file or folder")
    dtypes = partial(resolve_dtypes, spec.precision, spec.device)
    role = ROLES[spec.role]
    load_vae = spec.vae is None and role.name == "base"
    if is_diffusers_folder(spec.checkpoint):
        modules, configs = load_diffusers_folder(spec.checkpoint, dtypes=dtypes, load_vae=load_vae, role=role)
    else:
        modules, configs = load_single_file(spec.checkpoint, dtypes=dtypes, load_vae=load_vae,
                                            allow_pickle=spec.allow_pickle, role=role)
    if spec.vae is not None:
        modules["vae"], vae_fp16_safe = load_vae_file(spec.vae, dtypes=dtypes, allow_pickle=spec.allow_pickle)
    else:
        vae_fp16_safe = fp16_safe(configs["vae"])
    tokenizer, tokenizer_2 = load_clip_tokenizers()
    residency = place_parts(modules, spec.device, spec.memory)
    if spec.compile:
        compile_unet(modules["unet"])
    parked = [name for name, part in residency.parts.items() if part.device is None]
    log.info("loaded %s %s (unet %s) on %s, memory %s%s", role.name, Path(spec.checkpoint).name, modules["unet"].dtype,
             spec.device, spec.memory, f" (parked in CPU memory: {', '.join(parked)})" if parked else "")
    return SDXLComponents(unet=modules["unet"], vae=modules.get("vae"), text_encoder=modules.get("text_encoder"),
                          text_encoder_2=modules["text_encoder_2"],
                          tokenizer=tokenizer if "text_encoder" in modules else None, tokenizer_2=tokenizer_2,
                          scheduler_config=dict(configs["scheduler"]), source=str(spec.checkpoint),
                          vae_fp16_safe=vae_fp16_safe, device=spec.device, role=role.name, residency=residency,
                          compiled=spec.compile)
