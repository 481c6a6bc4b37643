"""A tiny random ESRGAN (BasicSR RRDBNet layout, x4) saved as the upscaler files users have: .safetensors or .pth."""

from __future__ import annotations

from pathlib import Path

import torch


def tiny_esrgan_state_dict(seed: int = 0, filters: int = 8, blocks: int = 1) -> dict[str, torch.Tensor]:
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(seed)
    return {k: v.contiguous() for k, v in ESRGAN(num_filters=filters, num_blocks=blocks, scale=4).state_dict().items()}


def write_upscaler(state_dict: dict[str, torch.Tensor], path: Path) -> Path:
    """`.pth` as RealESRGAN releases it ({"params_ema": ...}); anything else as .safetensors."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".pth":
        torch.save({"params_ema": state_dict}, path)
    else:
        from safetensors.torch import save_file

        save_file(state_dict, str(path))
    return path
