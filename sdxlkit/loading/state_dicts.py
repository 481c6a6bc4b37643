"""Reading weight files and putting state dicts into freshly built (weightless) models, with errors naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import ModelLoadError

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


def read_state_dict(path: Path, *, allow_pickle: bool = False) -> tuple[dict, dict]:
    """Return (tensors, safetensors metadata). Pickle formats only when explicitly allowed."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
                return {k: f.get_tensor(k) for k in f.keys()}, metadata
        except Exception as exc:  # safetensors raises its own error types for bad headers and short files
            raise ModelLoadError(f"{path.name}: not a readable .safetensors file ({exc}); it may be truncated or corrupt") from None
    if path.suffix in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise ModelLoadError(
                f"{path.name}: refusing a pickle-based {path.suffix} file, which can run code when loaded. "
                "Convert it to .safetensors, or allow pickle files explicitly (CLI --allow-pickle, loader option allow_pickle)."
            )
        import torch

        try:
            data = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelLoadError(f"{path.name}: cannot be read as a torch checkpoint ({exc})") from None
        return data.get("state_dict", data), {}
    raise ModelLoadError(f"{path.name}: unknown weight file type {path.suffix!r}; expected .safetensors")


def empty_model(kind: str, config: dict):
    """A model of the given kind built from its config with no weights allocated (parameters on the meta device)."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        if kind == "unet":
            from diffusers import UNet2DConditionModel

            return UNet2DConditionModel.from_config(config)
        if kind == "vae":
            from diffusers import AutoencoderKL

            return AutoencoderKL.from_config(config)
        from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

        cls = CLIPTextModel if kind == "text_encoder" else CLIPTextModelWithProjection
        return cls(CLIPTextConfig(**config))


def _align_prefix(state_dict: dict, expected: set[str]) -> dict:
    """transformers >= 5 dropped the "text_model." prefix from CLIPTextModel keys; accept either spelling."""
    if any(k in expected for k in state_dict):
        return state_dict
    stripped = {k.removeprefix("text_model."): v for k, v in state_dict.items()}
    return stripped if any(k in expected for k in stripped) else state_dict


def _describe(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")


def build_model(path: Path, kind: str, config: dict, convert: Callable, dtype=None):
    """Build `kind` from `config` and load the state dict that `convert(model)` returns, checking every tensor."""
    model = empty_model(kind, config)
    try:
        state_dict = convert(model)
    except Exception as exc:
        raise ModelLoadError(f"{Path(path).name}: cannot read the {kind} weights ({type(exc).__name__}: {exc})") from None
    expected = model.state_dict()
    state_dict = _align_prefix({k: v for k, v in state_dict.items() if not k.endswith("position_ids")}, set(expected))
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(state_dict) if tuple(expected[k].shape) != tuple(state_dict[k].shape))
    if missing or unexpected or reshaped:
        parts = [f"{len(missing)} missing ({_describe(missing)})" if missing else "",
                 f"{len(unexpected)} unexpected ({_describe(unexpected)})" if unexpected else "",
                 f"{len(reshaped)} of another shape ({_describe(reshaped)})" if reshaped else ""]
        raise ModelLoadError(
            f"{Path(path).name}: the {kind} weights do not fit the SDXL {kind} architecture: "
            + "; ".join(p for p in parts if p) + ". Is this an SDXL checkpoint of that kind (base or refiner)?"
        )
    import torch

    dtype = dtype or torch.float32
    model.load_state_dict({k: v.to(dtype) for k, v in state_dict.items()}, strict=True, assign=True)
    return model.eval().requires_grad_(False)
