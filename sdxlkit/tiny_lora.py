"""Random-weight SDXL LoRAs for tests and benchmarks, written in the two file layouts users have: kohya/A1111
(lora_unet_input_blocks_4_1_..., lora_te1_/lora_te2_, with alphas) and diffusers/PEFT (unet.*.lora_A/lora_B)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .loading.stability_layout import _rename, unet_modules

UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")
ENCODERS = (("text_encoder", "lora_te1_"), ("text_encoder_2", "lora_te2_"))


@dataclass
class Layer:
    module: str  # diffusers module name; text-encoder names always carry "text_model." as files do
    down: torch.Tensor  # [rank, in]
    up: torch.Tensor  # [out, rank]
    alpha: float


def _text_model_name(name: str) -> str:
    return name if name.startswith("text_model.") else "text_model." + name  # transformers 5 dropped the prefix


def random_lora(components: dict, seed: int, rank: int = 4, alpha: float = 2.0, scale: float = 0.2,
                text_encoders: bool = True) -> dict[str, list[Layer]]:
    """Layers per component ("unet", "text_encoder", "text_encoder_2") for attention projections."""
    generator = torch.Generator().manual_seed(seed)

    def layers(model, targets, rename=lambda n: n):
        out = []
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and name.endswith(targets):
                down = torch.randn(rank, module.in_features, generator=generator) * scale
                up = torch.randn(module.out_features, rank, generator=generator) * scale
                out.append(Layer(rename(name), down, up, alpha))
        return out

    lora = {"unet": layers(components["unet"], UNET_TARGETS)}
    if text_encoders:
        for encoder, _ in ENCODERS:
            lora[encoder] = layers(components[encoder], TEXT_TARGETS, _text_model_name)
    return lora


def kohya_state_dict(lora: dict[str, list[Layer]], components: dict) -> dict[str, torch.Tensor]:
    unet_sd = components["unet"].state_dict()
    stability = _rename({f"{layer.module}.weight": unet_sd[f"{layer.module}.weight"] for layer in lora["unet"]},
                        unet_modules(unet_sd), "", "UNet")
    names = {("unet", layer.module): "lora_unet_" + key.removesuffix(".weight").replace(".", "_")
             for layer, key in zip(lora["unet"], stability)}
    for encoder, prefix in ENCODERS:
        names.update({(encoder, layer.module): prefix + layer.module.replace(".", "_") for layer in lora.get(encoder, [])})
    out = {}
    for component, layers in lora.items():
        for layer in layers:
            base = names[component, layer.module]
            out[f"{base}.lora_down.weight"] = layer.down.contiguous()
            out[f"{base}.lora_up.weight"] = layer.up.contiguous()
            out[f"{base}.alpha"] = torch.tensor(layer.alpha)
    return out


def diffusers_state_dict(lora: dict[str, list[Layer]]) -> dict[str, torch.Tensor]:
    """PEFT layout without alphas (scale 1): the alpha/rank factor is folded into lora_B."""
    out = {}
    for component, layers in lora.items():
        for layer in layers:
            rank = layer.down.shape[0]
            out[f"{component}.{layer.module}.lora_A.weight"] = layer.down.contiguous()
            out[f"{component}.{layer.module}.lora_B.weight"] = (layer.up * (layer.alpha / rank)).contiguous()
    return out


def write_lora(state_dict: dict[str, torch.Tensor], path) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state_dict, str(path))
    return path
