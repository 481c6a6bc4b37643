"""Reading a PhotoMaker file: `{"id_encoder": ..., "lora_weights": ...}` as TencentARC ships it (photomaker-v1.bin,
a torch pickle, read with weights_only=True so it cannot run code) or the same keys flattened into a .safetensors
file (`id_encoder.*`, `lora_weights.*`, as the reference pipeline reads them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelLoadError
from ..loading.state_dicts import read_state_dict

SECTIONS = ("id_encoder", "lora_weights")
DEFAULT_REFERENCE = "photomaker-v1"  # the file looked up in models/photomaker (the task names no PhotoMaker model)
V2_MARKER = "qformer_perceiver."  # PhotoMaker V2's ID encoder (needs InsightFace face embeddings)


@dataclass(frozen=True)
class PhotoMakerFile:
    path: Path
    id_encoder: dict
    lora_weights: dict


def _sections(path: Path) -> dict:
    data, _ = read_state_dict(path, allow_pickle=True)  # .bin: torch.load(weights_only=True)
    if path.suffix == ".safetensors":
        return {name: {k.removeprefix(name + "."): v for k, v in data.items() if k.startswith(name + ".")}
                for name in SECTIONS}
    if not isinstance(data, dict) or sorted(data) != sorted(SECTIONS) or not all(isinstance(data[s], dict) for s in SECTIONS):
        keys = ", ".join(map(str, list(data)[:4])) if isinstance(data, dict) else type(data).__name__
        raise ModelLoadError(f"{path.name}: not a PhotoMaker file (expected the sections id_encoder and lora_weights; "
                             f"found {keys})")
    return data


def read_photomaker(path: Path) -> PhotoMakerFile:
    """The file's two sections; a V2 file, a file of another kind or a broken one is refused naming the file."""
    path = Path(path)
    sections = _sections(path)
    encoder, lora = sections["id_encoder"], sections["lora_weights"]
    if any(k.startswith(V2_MARKER) for k in encoder):
        raise ModelLoadError(
            f"{path.name}: a PhotoMaker V2 file; V2 needs InsightFace face embeddings (antelopev2 models, not "
            "available offline here) and is not supported: use photomaker-v1.bin")
    if not encoder or not lora:
        missing = [name for name, part in zip(SECTIONS, (encoder, lora)) if not part]
        raise ModelLoadError(f"{path.name}: not a PhotoMaker file ({' and '.join(missing)} missing or empty)")
    return PhotoMakerFile(path, encoder, lora)


def lora_weights(path: Path) -> dict:
    """The UNet LoRA of a PhotoMaker file (diffusers' attention-processor keys, unet.*.to_k_lora.down.weight)."""
    return read_photomaker(path).lora_weights
