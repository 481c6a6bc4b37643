"""A random-weight Stable Diffusion safety checker for tests, saved as CompVis/stable-diffusion-safety-checker is
(config.json, model.safetensors, preprocessor_config.json), small: a 2-layer CLIP vision encoder on 32x32 inputs.

`verdict` fixes the outcome through the concept thresholds (the checker flags an image when the cosine similarity
to a concept exceeds its threshold): True = every image is flagged (threshold -2), False = none (threshold 2)."""

from __future__ import annotations

from pathlib import Path

import torch


def write_tiny_safety_checker(folder, verdict: bool, seed: int = 0) -> Path:
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    torch.manual_seed(seed)
    config = CLIPConfig(projection_dim=16,
                        text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2},
                        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8})
    model = StableDiffusionSafetyChecker(config).eval()
    with torch.no_grad():
        model.concept_embeds.normal_()
        model.special_care_embeds.normal_()
        model.concept_embeds_weights.fill_(-2.0 if verdict else 2.0)
        model.special_care_embeds_weights.fill_(2.0)
    folder = Path(folder)
    model.save_pretrained(str(folder), safe_serialization=True)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(str(folder))
    return folder
