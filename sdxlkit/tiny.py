"""SDXL-shaped models with random weights, for tests ("tiny"), CPU benchmarks ("mid") and GPU benchmarks ("full").
Nothing is downloaded.

They keep SDXL's structure (3 UNet levels with text_time conditioning, a 4-level VAE, a CLIP-L-like and an
OpenCLIP-bigG-like text encoder) so every diffusers / single-file code path runs on them. text_encoder_2 has 10
layers because diffusers recognises an SDXL base checkpoint by `resblocks.9`, and the two encoders have different
widths because diffusers tells them apart by width.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from .loading.single_file import CONFIG_METADATA_KEY, REFINER, base_configs

MODELS = ("unet", "vae", "text_encoder", "text_encoder_2")

PRESETS = {
    "full": {},  # SDXL base's own sizes (2.6B-parameter UNet): for GPU benchmarks
    "tiny": {
        "unet": {"block_out_channels": (32, 64, 64), "transformer_layers_per_block": (1, 1, 1),
                 "attention_head_dim": (1, 2, 2), "addition_time_embed_dim": 8, "norm_num_groups": 8,
                 "sample_size": 8},
        "vae": {"block_out_channels": (32, 32, 64, 64), "norm_num_groups": 8, "sample_size": 64},
        "text_encoder": {"hidden_size": 32, "intermediate_size": 128, "num_hidden_layers": 3,
                         "num_attention_heads": 2, "projection_dim": 32},
        "text_encoder_2": {"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 10,
                           "num_attention_heads": 4, "projection_dim": 64},
    },
    "mid": {
        "unet": {"block_out_channels": (64, 128, 256), "transformer_layers_per_block": (1, 2, 2),
                 "attention_head_dim": (1, 2, 4), "addition_time_embed_dim": 32, "norm_num_groups": 32,
                 "sample_size": 32},
        "vae": {"block_out_channels": (32, 64, 64, 64), "norm_num_groups": 32, "sample_size": 256},
        "text_encoder": {"hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 4,
                         "num_attention_heads": 2, "projection_dim": 128},
        "text_encoder_2": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 10,
                           "num_attention_heads": 4, "projection_dim": 256},
    },
}


def preset_configs(preset: str) -> dict:
    """SDXL base configs with the preset's sizes; the UNet's conditioning widths follow from the text encoders."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; pick one of {sorted(PRESETS)}")
    configs = base_configs()
    for name, overrides in PRESETS[preset].items():
        configs[name].update(overrides)
    te1, te2, unet = configs["text_encoder"], configs["text_encoder_2"], configs["unet"]
    unet["cross_attention_dim"] = te1["hidden_size"] + te2["hidden_size"]
    # add_time_ids are 6 numbers (original size, crop, target size), each embedded, next to the pooled TE2 output
    unet["projection_class_embeddings_input_dim"] = 6 * unet["addition_time_embed_dim"] + te2["projection_dim"]
    return configs


def refiner_configs(preset: str) -> dict:
    """The refiner's configs (4-level UNet without attention at both ends, bigG only, aesthetic-score time ids)
    scaled like `preset`: channels and head counts from the base preset, the refiner's own block layout."""
    base, configs = preset_configs(preset), REFINER.configs()
    configs["text_encoder_2"], configs["vae"] = base["text_encoder_2"], base["vae"]
    unet, small = configs["unet"], PRESETS[preset].get("unet")
    if small:
        widths, heads = small["block_out_channels"], small["attention_head_dim"]
        unet.update(block_out_channels=(*widths, widths[-1]), attention_head_dim=(*heads, heads[-1]),
                    transformer_layers_per_block=1, addition_time_embed_dim=small["addition_time_embed_dim"],
                    norm_num_groups=small["norm_num_groups"], sample_size=small["sample_size"])
    te2 = configs["text_encoder_2"]
    unet["cross_attention_dim"] = te2["hidden_size"]
    # refiner time ids: original size, crop, aesthetic score = 5 numbers, next to the pooled bigG output
    unet["projection_class_embeddings_input_dim"] = 5 * unet["addition_time_embed_dim"] + te2["projection_dim"]
    return configs


def build_tiny_refiner(preset: str = "tiny", seed: int = 1) -> dict:
    """A refiner with random weights: unet, vae, text_encoder_2, tokenizer_2, scheduler (float32, eval mode)."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    from .loading.tokenizers import load_clip_tokenizers

    configs = refiner_configs(preset)
    torch.manual_seed(seed)
    models = {"unet": UNet2DConditionModel.from_config(configs["unet"]),
              "vae": AutoencoderKL.from_config(configs["vae"]),
              "text_encoder_2": CLIPTextModelWithProjection(CLIPTextConfig(**configs["text_encoder_2"]))}
    return {**{name: m.eval().requires_grad_(False) for name, m in models.items()},
            "tokenizer_2": load_clip_tokenizers()[1], "scheduler": EulerDiscreteScheduler.from_config(configs["scheduler"])}


def build_tiny_components(preset: str = "tiny", seed: int = 0) -> dict:
    """unet, vae, text_encoder(_2), tokenizer(_2), scheduler: float32, eval mode, random weights from `seed`."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from .loading.tokenizers import load_clip_tokenizers

    configs = preset_configs(preset)
    torch.manual_seed(seed)
    models = {
        "unet": UNet2DConditionModel.from_config(configs["unet"]),
        "vae": AutoencoderKL.from_config(configs["vae"]),
        "text_encoder": CLIPTextModel(CLIPTextConfig(**configs["text_encoder"])),
        "text_encoder_2": CLIPTextModelWithProjection(CLIPTextConfig(**configs["text_encoder_2"])),
    }
    tokenizer, tokenizer_2 = load_clip_tokenizers()
    components = {name: m.eval().requires_grad_(False) for name, m in models.items()}
    return {**components, "tokenizer": tokenizer, "tokenizer_2": tokenizer_2,
            "scheduler": EulerDiscreteScheduler.from_config(configs["scheduler"])}


def component_configs(components: dict) -> dict:
    """JSON-ready configs of the models and the scheduler, enough to rebuild each of them."""
    configs = {name: dict(components[name].config) for name in ("unet", "vae", "scheduler")}
    for name in ("text_encoder", "text_encoder_2"):
        if components.get(name) is not None:
            configs[name] = components[name].config.to_dict()
    return json.loads(json.dumps(configs))  # tuples become lists; anything not JSON-ready fails here


def write_single_file(components: dict, path, dtype: torch.dtype = torch.float32) -> Path:
    """Write one .safetensors file in Stability's layout (base or, for components without a text_encoder, the
    refiner's), with the configs in the metadata key "sdxlkit.configs"."""
    from safetensors.torch import save_file

    from .loading.stability_layout import diffusers_to_stability, refiner_to_stability

    path = Path(path)
    if components.get("text_encoder") is None:
        state_dict = refiner_to_stability(*(components[name].state_dict() for name in ("unet", "vae", "text_encoder_2")))
    else:
        state_dict = diffusers_to_stability(*(components[name].state_dict() for name in MODELS))
    state_dict = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in state_dict.items()}
    metadata = {CONFIG_METADATA_KEY: json.dumps(component_configs(components))}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(state_dict, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def write_diffusers_folder(components: dict, path) -> Path:
    """save_pretrained folder that StableDiffusionXLPipeline.from_pretrained(path, local_files_only=True) loads; for
    refiner components, StableDiffusionXLImg2ImgPipeline's (as stabilityai/stable-diffusion-xl-refiner-1.0)."""
    from diffusers import StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline

    if components.get("text_encoder") is None:
        pipe = StableDiffusionXLImg2ImgPipeline(**components, text_encoder=None, tokenizer=None, add_watermarker=False,
                                                requires_aesthetics_score=True, force_zeros_for_empty_prompt=False)
    else:
        pipe = StableDiffusionXLPipeline(**components, add_watermarker=False)
    pipe.save_pretrained(str(path), safe_serialization=True)
    return Path(path)
