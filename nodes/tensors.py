"""ComfyUI tensors <-> PIL images. IMAGE is [B,H,W,C] float 0..1; MASK is [B,H,W] float 0..1 (1 = repaint)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ..sdxlkit.images import data_uri


def image_to_pil(image, index: int = 0) -> Image.Image:
    array = (image[index].detach().cpu().float().clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(array[..., :3])


def mask_to_pil(mask, index: int = 0) -> Image.Image:
    m = mask if mask.ndim == 3 else mask[None]
    return Image.fromarray((m[index].detach().cpu().float().clamp(0, 1).numpy() * 255).round().astype(np.uint8), "L")


def png_data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return data_uri(buffer.getvalue(), "PNG")
