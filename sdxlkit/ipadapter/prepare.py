"""From ipAdapters[] requests to adapters ready to act: loaded adapters and encoders (kept between generations),
guide images encoded once per image and encoder (kept too, so switching guide images re-encodes only the new one),
and the image tokens cubiq builds (combined embeddings, projected; uncond from zeros or a black image)."""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from ..errors import ModelLoadError
from ..loading.lru import LruCache, file_key
from . import clip_vision, weights
from .files import IPAdapterModel, load_ip_adapter
from .part import AdapterUse, cross_attentions


@dataclass
class IPAdapterRequest:
    """One ipAdapters[] entry: the adapter and encoder files, the decoded guide images and cubiq's options."""

    path: Path
    encoder_path: Path
    images: list[Image.Image]
    weight: float = 1.0
    weight_type: str = "normal"
    combine_method: str = "concat"
    embed_scaling: str = "kv"
    weight_composition: float = 1.0

    def block_weights(self) -> dict[int, float]:
        return weights.block_weights(self.weight_type, self.weight, self.weight_composition)


ADAPTERS = LruCache(3)
ENCODERS = LruCache(2)
ENCODINGS = LruCache(32)  # (encoder, image) -> CLIP outputs


def load_adapter(path: Path, unet, dtype, device) -> IPAdapterModel:
    numbers = [n for _, n, _ in cross_attentions(unet)]
    width = unet.config.cross_attention_dim
    key = (*file_key(path, "IP-Adapter"), str(dtype), str(device), width, tuple(numbers))
    return ADAPTERS.get_or_make(key, lambda: load_ip_adapter(path, width, numbers, dtype, device))


def load_encoder(path: Path, dtype, device):
    key = (*file_key(path, "CLIP vision model"), str(dtype), str(device))
    return ENCODERS.get_or_make(key, lambda: clip_vision.load_clip_vision(path, dtype, device))


def _digest(image: Image.Image | None) -> str:
    if image is None:
        return "black"
    return hashlib.sha1(f"{image.mode}{image.size}".encode() + image.tobytes()).hexdigest()


def _encoded(encoder_path: Path, encoder, image: Image.Image | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(image_embeds [1, proj], penultimate states [1, 257, width]) of one image (None: cubiq's black image)."""
    key = (*file_key(encoder_path, "CLIP vision model"), str(encoder.dtype), str(encoder.device), _digest(image))
    pixels = (lambda: clip_vision.black_pixels()) if image is None else (lambda: clip_vision.preprocess([image]))
    return ENCODINGS.get_or_make(key, lambda: clip_vision.encode(encoder, pixels()))


def _check_pair(adapter: IPAdapterModel, encoder, encoder_path: Path) -> None:
    config = encoder.config
    given = config.hidden_size if adapter.plus else config.projection_dim
    if given != adapter.clip_width:
        raise ModelLoadError(
            f"{adapter.name} needs a CLIP vision encoder whose {'hidden states' if adapter.plus else 'image embeds'} "
            f"are {adapter.clip_width} wide; {Path(encoder_path).name} gives {given}. ip-adapter_sdxl uses "
            "ViT-bigG/14, the *_sdxl_vit-h adapters (Plus, Plus Face) use ViT-H/14")


def image_tokens(adapter: IPAdapterModel, encoder, encoder_path: Path, images: list[Image.Image],
                 method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(cond, uncond) image tokens [1, tokens, width] as cubiq's ipadapter_execute builds them: base adapters
    project the image embeds (uncond: zeros), Plus adapters resample the penultimate states (uncond: a black
    image's); several images are combined first (concat: their tokens are concatenated, uncond repeated)."""
    encoded = [_encoded(encoder_path, encoder, image) for image in images]
    if adapter.plus:
        clip = torch.cat([states for _, states in encoded])
        uncond = _encoded(encoder_path, encoder, None)[1].expand(len(images), -1, -1)
    else:
        clip = torch.cat([embeds for embeds, _ in encoded])
        uncond = torch.zeros_like(clip)
    clip = weights.combine(clip, method)
    uncond = uncond[:clip.shape[0]]
    projection = adapter.projection
    dtype = next(projection.parameters()).dtype
    with torch.inference_mode():
        cond_tokens, uncond_tokens = projection(clip.to(dtype)), projection(uncond.to(dtype))
    width = cond_tokens.shape[-1]
    return cond_tokens.reshape(1, -1, width), uncond_tokens.reshape(1, -1, width)


def adapter_uses(requests: list[IPAdapterRequest], unet, dtype, device, encoder_device=None,
                 bringing=lambda encoder: nullcontext()) -> list[AdapterUse]:
    """The requests that act on some block (weight 0 everywhere: left out, nothing is loaded for them). The CLIP
    vision encoder is loaded on `encoder_device` (default `device`) and encodes within `bringing(encoder)` (the
    memory mode's: residency.bringing)."""
    uses = []
    for request in requests:
        block_weights = request.block_weights()
        if not block_weights:
            continue
        adapter = load_adapter(request.path, unet, dtype, device)
        encoder = load_encoder(request.encoder_path, dtype, encoder_device or device)
        _check_pair(adapter, encoder, request.encoder_path)
        with bringing(encoder):
            cond, uncond = image_tokens(adapter, encoder, request.encoder_path, request.images,
                                        request.combine_method)
        uses.append(AdapterUse(adapter, cond, uncond, block_weights, request.embed_scaling))
    return uses
