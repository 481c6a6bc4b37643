"""Random-weight IP-Adapters and CLIP vision encoders for tests and benchmarks, saved in the real file layouts:
h94's IP-Adapter keys (`image_proj.*`, `ip_adapter.N.to_k_ip/to_v_ip.weight`, flat in .safetensors or as the
{"image_proj": ..., "ip_adapter": ...} dict of the .bin files) and transformers' CLIPVisionModelWithProjection
keys, with the encoder's config in the safetensors metadata (small encoders have no shipped config)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .ipadapter.clip_vision import CONFIG_METADATA_KEY
from .ipadapter.part import cross_attentions
from .ipadapter.projection import ImageProjection, Resampler

ENCODER_SIZES = {"tiny": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3,
                          "num_attention_heads": 2, "projection_dim": 24},
                 "mid": {"hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 6,
                         "num_attention_heads": 4, "projection_dim": 96}}


def build_clip_vision(size: str = "tiny", seed: int = 0):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    config = CLIPVisionConfig(image_size=224, patch_size=14, **ENCODER_SIZES[size])
    return CLIPVisionModelWithProjection(config).eval().requires_grad_(False)


def write_clip_vision(model, path) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = {k: v for k, v in model.config.to_dict().items() if k in ENCODER_SIZES["tiny"] or k in ("image_size", "patch_size")}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path),
              metadata={CONFIG_METADATA_KEY: json.dumps(config)})
    return path


def random_ip_adapter(unet, encoder, plus: bool, seed: int = 0, scale: float = 0.3) -> dict[str, torch.Tensor]:
    """A flat state dict in h94's layout for `unet` (k/v per cross-attention) and `encoder` (its projection width for
    base adapters, its hidden width for Plus: a 16-token resampler)."""
    torch.manual_seed(seed)
    width = unet.config.cross_attention_dim
    if plus:
        projection = Resampler(dim=64, depth=2, heads=1, tokens=16, clip_dim=encoder.config.hidden_size, width=width,
                               ff_inner=4 * 64)
        torch.nn.init.normal_(projection.latents, std=64 ** -0.5)
    else:
        projection = ImageProjection(clip_dim=encoder.config.projection_dim, width=width, tokens=4)
    sd = {f"image_proj.{k}": v for k, v in projection.state_dict().items()}
    generator = torch.Generator().manual_seed(seed)
    modules = dict(unet.named_modules())
    for name, number, _ in cross_attentions(unet):
        inner = modules[name.removesuffix(".processor")].to_k.out_features
        for kind in ("k", "v"):
            sd[f"ip_adapter.{number}.to_{kind}_ip.weight"] = torch.randn(inner, width, generator=generator) * scale / width ** 0.5
    return sd


def write_ip_adapter(sd: dict[str, torch.Tensor], path) -> Path:
    """.safetensors (flat keys) or .bin (the nested dict h94's .bin files hold, saved with torch.save)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".bin":
        nested: dict[str, dict] = {"image_proj": {}, "ip_adapter": {}}
        for key, value in sd.items():
            group, rest = key.split(".", 1)
            nested[group][rest] = value
        torch.save(nested, str(path))
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path
