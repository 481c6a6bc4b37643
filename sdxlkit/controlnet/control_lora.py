"""Control-LoRA (Stability's control-lora-{canny,depth,recolor,sketch}-rank128/256): a ControlNet stored as its
difference from the SDXL UNet it runs with. Its weights are made as ComfyUI's ControlLora makes them: the UNet's
encoder weights as they are now (LoRAs merged), the file's full weights (hint block, zero convolutions, norms,
biases) over them, and W + up @ down for each of the file's low-rank pairs; here the sum is taken in float32."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelLoadError
from ..loading.stability_layout import _rename, unet_modules

MARKER = "lora_controlnet"
_ENCODER = ("time_embed.", "label_emb.", "input_blocks.", "middle_block.")


def is_control_lora(path: Path) -> bool:
    """Whether the file is a Control-LoRA, read off its safetensors header alone."""
    from safetensors import safe_open

    if path.is_dir() or path.suffix != ".safetensors":
        return False
    try:
        with safe_open(str(path), "pt") as file:
            return MARKER in file.keys()
    except Exception:  # unreadable: loading it says why
        return False


def control_lora_weights(name: str, sd: dict, unet) -> dict:
    """The full ControlNet state dict, in the original (ldm) layout, of the Control-LoRA `sd` over `unet`."""
    import torch

    from ..lora import base_state_dict

    if not any(k.startswith("input_hint_block.") for k in sd):
        raise ModelLoadError(f"{name}: marked as a Control-LoRA but holds no hint block (input_hint_block.*)")
    unet_sd = base_state_dict(unet)
    weights = {k: v.to("cpu", torch.float32) for k, v in _rename(unet_sd, unet_modules(unet_sd), "", "UNet").items()
               if k.startswith(_ENCODER)}
    for key, value in sd.items():
        if key == MARKER or "__" in key or not key.endswith((".down", ".weight", ".bias")):
            continue
        if not key.endswith(".down"):
            weights[key] = value
            continue
        stem = key.removesuffix(".down")
        up, base = sd.get(stem + ".up"), weights.get(stem + ".weight")
        if up is None or base is None:
            lacks = "its up weight" if up is None else "a counterpart in this SDXL UNet"
            raise ModelLoadError(f"{name}: Control-LoRA layer {stem} lacks {lacks}")
        product = up.flatten(start_dim=1).to(torch.float32) @ value.flatten(start_dim=1).to(torch.float32)
        if product.numel() != base.numel():
            raise ModelLoadError(f"{name}: Control-LoRA layer {stem} changes {product.numel()} weights; this SDXL "
                                 f"UNet's has {base.numel()}. Is it a Control-LoRA for SDXL?")
        weights[stem + ".weight"] = base + product.reshape(base.shape)
    return weights
