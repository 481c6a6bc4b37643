"""LoRA files read once and kept parsed, checked before they touch a model: kohya/A1111 and diffusers/PEFT LoRAs
(converted by diffusers for PEFT), and kohya-named LyCORIS files (LoHa, LoKr, LoCon with a Tucker mid weight, full
and norm differences, DoRA), kept as per-layer weight patches."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import ModelLoadError
from ..loading.lru import LruCache, file_key
from ..loading.state_dicts import read_state_dict
from .patch_files import PatchFile, layer_patches

logger = logging.getLogger(__name__)

# Key fragments of the LyCORIS types no SDXL host merges the same way; they are refused by name.
_REFUSED_MARKERS = {"oft_blocks": "OFT/BOFT", "oft_diag": "OFT", "a1.weight": "GLoRA"}
# Suffixes only weight patches apply (diffusers/PEFT cannot): a kohya-named file with one of them is patched directly.
_PATCH_ONLY = ("hada_", "lokr_", "lora_mid.weight", "dora_scale", ".diff", ".w_norm", ".b_norm")
_KOHYA_PREFIXES = ("lora_unet_", "lora_te1_", "lora_te2_")
_BUNDLED = "bundle_emb."
_SDXL_PREFIXES = ("lora_unet_", "lora_te1_", "lora_te2_", "unet.", "text_encoder.", "text_encoder_2.")
_SD1_TEXT_PREFIX = "lora_te_"


@dataclass(frozen=True)
class LoraFile:
    """A LoRA converted to diffusers' layout: what load_lora_into_unet / load_lora_into_text_encoder take."""

    path: Path
    state_dict: dict
    network_alphas: dict | None
    metadata: dict | None

    @property
    def name(self) -> str:
        return self.path.name

    def layer_count(self) -> int:
        """Number of low-rank layer pairs (one per patched module)."""
        return sum(1 for k in self.state_dict if k.endswith(("lora.down.weight", "lora_A.weight", "lora_down.weight")))


@dataclass(frozen=True)
class EmbeddedLora:
    """A LoRA stored inside another model file (PhotoMaker's lora_weights): `read(path)` returns its tensors.
    Stands wherever a LoRA path does (apply_loras, LoraFileCache)."""

    path: Path
    read: Callable[[Path], dict]

    @property
    def name(self) -> str:
        return self.path.name


def _refuse_foreign_formats(path: Path, keys: list[str]) -> None:
    for marker, kind in _REFUSED_MARKERS.items():
        if any(marker in k for k in keys):
            raise ModelLoadError(
                f"{path.name}: LyCORIS {kind} file; LoRA, LoCon, LoHa, LoKr, full/norm and DoRA files can be applied. "
                f"Use a LoRA version of it, or extract one with LyCORIS' tools.")
    if any("lora_magnitude_vector" in k for k in keys):
        raise ModelLoadError(f"{path.name}: a DoRA file in PEFT's layout (lora_magnitude_vector); DoRA files in "
                             "kohya/LyCORIS layout (dora_scale) can be applied")
    if any(k.startswith(_SD1_TEXT_PREFIX) for k in keys):
        raise ModelLoadError(f"{path.name}: a LoRA for SD 1.x/2.x (one text encoder, 'lora_te_' keys), not for SDXL")
    if not any(k.startswith(_SDXL_PREFIXES) for k in keys):
        raise ModelLoadError(
            f"{path.name}: no SDXL LoRA keys (expected names starting with lora_unet_/lora_te1_/lora_te2_ as kohya "
            f"writes them, or unet./text_encoder./text_encoder_2. as diffusers does); found e.g. {', '.join(keys[:3])}")


def parse_lora(source: Path | EmbeddedLora, unet_config) -> LoraFile | PatchFile:
    """Read and convert one file; every failure is a ModelLoadError that names the file."""
    from diffusers import StableDiffusionXLPipeline

    if isinstance(source, EmbeddedLora):
        path, tensors = source.path, source.read(source.path)
    else:
        path, tensors = Path(source), read_state_dict(source)[0]
    bundled = sorted(k for k in tensors if k.startswith(_BUNDLED))
    if bundled:  # pivotal-tuning embeddings some trainers bundle; other hosts skip them too
        logger.warning("%s: skipping %d bundled embedding tensors (%s); load them as embeddings", Path(path).name,
                       len(bundled), bundled[0])
        tensors = {k: v for k, v in tensors.items() if not k.startswith(_BUNDLED)}
    keys = sorted(tensors)
    _refuse_foreign_formats(path, keys)
    if any(k.startswith(_KOHYA_PREFIXES) for k in keys) and any(marker in k for k in keys for marker in _PATCH_ONLY):
        return PatchFile(Path(path), layer_patches(path.name, tensors))
    try:
        state_dict, alphas, metadata = StableDiffusionXLPipeline.lora_state_dict(
            tensors, unet_config=unet_config, return_lora_metadata=True)
    except Exception as exc:
        raise ModelLoadError(f"{path.name}: not a LoRA diffusers can convert ({exc})") from None
    if not state_dict or not all("lora" in k for k in state_dict):
        odd = [k for k in state_dict if "lora" not in k][:3]
        raise ModelLoadError(f"{path.name}: unexpected keys for a LoRA ({', '.join(odd) or 'none at all'})")
    return LoraFile(Path(path), state_dict, alphas, metadata)


class LoraFileCache(LruCache):
    """Parsed LoRA files by (path, size, mtime): switching back to a LoRA never reads its file again."""

    def __init__(self, capacity: int = 32):
        super().__init__(capacity)

    @property
    def reads(self) -> int:
        return self.made

    @staticmethod
    def key(source: Path | EmbeddedLora) -> tuple:
        if isinstance(source, EmbeddedLora):
            return (*file_key(source.path, "model file"), "embedded LoRA")
        return file_key(source, "LoRA file")

    def get(self, source: Path | EmbeddedLora, unet_config) -> LoraFile | PatchFile:
        source = source if isinstance(source, EmbeddedLora) else Path(source)
        return self.get_or_make(self.key(source), lambda: parse_lora(source, unet_config))


LORA_FILES = LoraFileCache()
