"""Random-weight SDXL ControlNets for tests and benchmarks, built from a (tiny) UNet as diffusers' tests do and saved
in the layouts found in models/controlnet: a diffusers folder, a single file with diffusers keys, a single file in
the original ldm layout (input_hint_block / zero_convs / middle_block_out), and a Control-LoRA."""

from __future__ import annotations

from pathlib import Path

import torch

from .loading.stability_layout import _rename, unet_modules

ZERO_INITIALISED = ("controlnet_down_blocks", "controlnet_mid_block", "controlnet_cond_embedding.conv_out")


def build_tiny_controlnet(unet, seed: int = 0, scale: float = 0.05):
    """ControlNetModel.from_unet, with its zero-initialised output convolutions randomised so that it has an effect."""
    from diffusers import ControlNetModel

    torch.manual_seed(seed)
    model = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32, 48, 64))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.startswith(ZERO_INITIALISED):
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
    return model.eval().requires_grad_(False)


def ldm_state_dict(model) -> dict[str, torch.Tensor]:
    """The ControlNet's weights with the original ControlNet repository's key names."""
    sd = model.state_dict()
    own = {k: v for k, v in sd.items() if k.startswith("controlnet_")}
    out = _rename({k: v for k, v in sd.items() if k not in own}, unet_modules(sd), "", "ControlNet")
    blocks = len({k.split(".")[2] for k in own if k.startswith("controlnet_cond_embedding.blocks.")})
    for key, value in own.items():
        parts = key.split(".")
        if parts[0] == "controlnet_down_blocks":
            out[f"zero_convs.{parts[1]}.0.{parts[2]}"] = value
        elif parts[0] == "controlnet_mid_block":
            out[f"middle_block_out.0.{parts[1]}"] = value
        elif parts[1] == "conv_in":
            out[f"input_hint_block.0.{parts[2]}"] = value
        elif parts[1] == "conv_out":
            out[f"input_hint_block.{2 * (blocks + 1)}.{parts[2]}"] = value
        else:
            out[f"input_hint_block.{2 * (int(parts[2]) + 1)}.{parts[3]}"] = value
    return {"control_model." + k: v for k, v in out.items()}


_ENCODER = ("time_embed.", "label_emb.", "input_blocks.", "middle_block.")


def control_lora_state_dict(model, rank: int = 4, seed: int = 0, scale: float = 0.05) -> dict[str, torch.Tensor]:
    """A Control-LoRA laid out as Stability's: every linear and convolution weight of the encoder as a random
    low-rank pair `<layer>.up` [out, rank(, 1, 1)] / `<layer>.down` [rank, in(, kh, kw)], everything else (hint block,
    zero convolutions, norms, biases) in full, and the `lora_controlnet` marker."""
    generator = torch.Generator().manual_seed(seed)
    out = {"lora_controlnet": torch.tensor([])}
    for key, value in ldm_state_dict(model).items():
        key = key.removeprefix("control_model.")
        if key.startswith(_ENCODER) and key.endswith(".weight") and value.dim() >= 2:
            stem, trailing = key.removesuffix(".weight"), [1] * (value.dim() - 2)
            out[stem + ".up"] = torch.randn([value.shape[0], rank, *trailing], generator=generator) * scale
            out[stem + ".down"] = torch.randn([rank, *value.shape[1:]], generator=generator) * scale
        else:
            out[key] = value
    return out


def write_controlnet(model, path, layout: str = "file") -> Path:
    """layout "file": one .safetensors with diffusers keys; "folder": save_pretrained; "ldm": original key names;
    "control_lora": a Control-LoRA (random low-rank pairs, see control_lora_state_dict)."""
    from safetensors.torch import save_file

    path = Path(path)
    if layout == "folder":
        model.save_pretrained(str(path), safe_serialization=True)
        return path
    state_dict = {"file": model.state_dict, "ldm": lambda: ldm_state_dict(model),
                  "control_lora": lambda: control_lora_state_dict(model)}[layout]()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(path))
    return path
