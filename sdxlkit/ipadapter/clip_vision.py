"""CLIP vision encoders from models/clip_vision, and guide images preprocessed as ComfyUI (cubiq) does.

The files users have from cubiq's README (`CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors`,
`CLIP-ViT-bigG-14-laion2B-39B-b160k.safetensors`, h94's `image_encoder/model.safetensors` renamed) hold a
transformers CLIPVisionModelWithProjection (`vision_model.*`, `visual_projection.weight`). The architecture is
recognised by width and depth and built offline from the configs shipped in sdxlkit/data/clip_vision; any other
encoder must carry its CLIPVisionConfig in the safetensors metadata key "sdxlkit.clip_vision_config".
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import ModelLoadError
from .files import read_weights

SIZE = 224
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
CONFIG_METADATA_KEY = "sdxlkit.clip_vision_config"
SHIPPED = {(1280, 32): "vit-h-14.json", (1664, 48): "vit-bigg-14.json"}  # (width, layers) -> config


def _config(path: Path, sd: dict, metadata: dict) -> dict:
    if any(k.startswith("visual.transformer.") for k in sd):
        raise ModelLoadError(f"{path.name}: a CLIP vision model in open_clip's layout (visual.transformer.*); use the "
                             "transformers layout file (h94's image_encoder/model.safetensors, as cubiq's README names)")
    if "vision_model.embeddings.class_embedding" not in sd or "visual_projection.weight" not in sd:
        raise ModelLoadError(f"{path.name}: not a CLIP vision model with projection (no vision_model.embeddings / "
                             f"visual_projection weights; found e.g. {', '.join(sorted(sd)[:3])})")
    width = sd["vision_model.embeddings.class_embedding"].shape[0]
    layers = len({k.split(".")[3] for k in sd if k.startswith("vision_model.encoder.layers.")})
    if (width, layers) in SHIPPED:
        return json.loads(resources.files("sdxlkit").joinpath("data/clip_vision", SHIPPED[width, layers]).read_text())
    if CONFIG_METADATA_KEY in metadata:
        return json.loads(metadata[CONFIG_METADATA_KEY])
    raise ModelLoadError(f"{path.name}: a CLIP vision model of width {width} with {layers} layers; IP-Adapters for "
                         "SDXL use ViT-H/14 (1280, 32 layers) or ViT-bigG/14 (1664, 48 layers)")


def load_clip_vision(path: Path, dtype, device):
    from accelerate import init_empty_weights
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    path = Path(path)
    sd, metadata = read_weights(path, "CLIP vision model")
    config = _config(path, sd, metadata)
    with init_empty_weights():
        model = CLIPVisionModelWithProjection(CLIPVisionConfig(**config))
    sd = {k: v for k, v in sd.items() if not k.endswith("position_ids")}
    expected = model.state_dict()
    if set(sd) != set(expected) or any(tuple(sd[k].shape) != tuple(v.shape) for k, v in expected.items()):
        odd = sorted(set(sd) ^ set(expected)) or [k for k, v in expected.items() if tuple(sd[k].shape) != tuple(v.shape)]
        raise ModelLoadError(f"{path.name}: weights do not fit the CLIP vision architecture they describe "
                             f"(e.g. {', '.join(odd[:3])})")
    model.load_state_dict({k: v.to(dtype) for k, v in sd.items()}, strict=True, assign=True)
    return model.to(device).eval().requires_grad_(False)


def preprocess(images: list[Image.Image]) -> torch.Tensor:
    """[N, 3, 224, 224] as ComfyUI's clip_preprocess: shortest side resized to 224 (bicubic, antialiased), centre
    crop, rounded to 8-bit levels, normalised with CLIP's mean and std. Images of different sizes are each done alone."""
    out = []
    for image in images:
        x = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
        h, w = x.shape[-2:]
        if (h, w) != (SIZE, SIZE):
            scale = SIZE / min(h, w)
            x = torch.nn.functional.interpolate(x, size=(round(scale * h), round(scale * w)), mode="bicubic",
                                                antialias=True)
            top, left = (x.shape[2] - SIZE) // 2, (x.shape[3] - SIZE) // 2
            x = x[:, :, top:top + SIZE, left:left + SIZE]
        out.append(x)
    x = torch.clip(255.0 * torch.cat(out), 0, 255).round() / 255.0
    return (x - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)


def black_pixels() -> torch.Tensor:
    """A black 224x224 image, preprocessed: cubiq's negative image for Plus models."""
    return preprocess([Image.new("RGB", (SIZE, SIZE))])


@torch.inference_mode()
def encode(model, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(image_embeds [N, proj], penultimate hidden states [N, 257, width]) as ComfyUI's encode_image returns them
    (its intermediate_output=-2 is transformers' hidden_states[-2])."""
    out = model(pixel_values=pixels.to(model.device, model.dtype), output_hidden_states=True)
    return out.image_embeds, out.hidden_states[-2]
