"""Random-weight PhotoMaker V1 files for tests, in TencentARC's layout: {"id_encoder": PhotoMakerIDEncoder's state
dict (vision_model.*, visual_projection(_2), fuse_module.*), "lora_weights": the UNet LoRA in diffusers'
attention-processor keys (unet.<block>.attn1.processor.to_q_lora.down.weight, ...)}, as photomaker-v1.bin (torch
pickle) or flattened into .safetensors. The vision tower is a small ViT with ViT-L/14's patch and resolution."""

from __future__ import annotations

from pathlib import Path

import torch

from .tiny_lora import Layer, random_lora

TINY_VISION = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "patch_size": 14,
               "image_size": 224}


def random_id_encoder(text_widths: tuple[int, int], seed: int):
    from transformers import CLIPVisionConfig

    from .photomaker.encoder import HEAD_WIDTH, IdEncoder, shipped_config

    torch.manual_seed(seed)
    config = CLIPVisionConfig(**(shipped_config() | TINY_VISION | {
        "num_attention_heads": TINY_VISION["hidden_size"] // HEAD_WIDTH, "projection_dim": text_widths[0]}))
    encoder = IdEncoder(config, text_widths[1]).eval()
    with torch.no_grad():  # layer norms start at identity; random ones make the fusion depend on every weight
        for module in encoder.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.normal_(1.0, 0.2)
                module.bias.normal_(0.0, 0.2)
    return encoder


def processor_lora_state_dict(layers: list[Layer]) -> dict[str, torch.Tensor]:
    """UNet LoRA layers in the attention-processor layout PhotoMaker ships (scale 1: alpha/rank folded into up)."""
    out = {}
    for layer in layers:
        block, projection = layer.module.rsplit(".", 1) if not layer.module.endswith("to_out.0") else (
            layer.module.removesuffix(".to_out.0"), "to_out")
        base = f"unet.{block}.processor.{projection}_lora"
        out[f"{base}.down.weight"] = layer.down.contiguous()
        out[f"{base}.up.weight"] = (layer.up * (layer.alpha / layer.down.shape[0])).contiguous()
    return out


def tiny_photomaker(components: dict, seed: int) -> tuple[dict, list[Layer]]:
    """({"id_encoder": ..., "lora_weights": ...}, the LoRA's layers) for the tiny SDXL `components`."""
    widths = (components["text_encoder"].config.hidden_size, components["text_encoder_2"].config.hidden_size)
    encoder = random_id_encoder(widths, seed)
    layers = random_lora(components, seed + 1, text_encoders=False)["unet"]
    return {"id_encoder": encoder.state_dict(), "lora_weights": processor_lora_state_dict(layers)}, layers


def write_photomaker(sections: dict, path) -> Path:
    """.bin: torch.save of the two sections (as TencentARC ships it); .safetensors: `section.key` flattened."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({f"{name}.{k}": v.contiguous() for name, part in sections.items() for k, v in part.items()}, str(path))
    else:
        torch.save(sections, str(path))
    return path
