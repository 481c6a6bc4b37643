"""Pixel geometry for inpaint and outpaint: the crop around a mask, the outpaint canvas, feathered masks."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

# Feather of the paste-back seam when inpainting (A1111's default mask blur).
INPAINT_FEATHER = 4


def mask_bbox(mask: Image.Image) -> tuple[int, int, int, int] | None:
    """Box (x0, y0, x1, y1) around the pixels to repaint (mask >= 128), or None for an empty mask."""
    return mask.point(lambda v: 255 if v >= 128 else 0).getbbox()


def crop_region(mask: Image.Image, margin: int, aspect: float) -> tuple[int, int, int, int]:
    """The mask's box grown by `margin` on each side, then widened to `aspect` (w/h) and kept inside the image,
    like A1111's "inpaint only masked"."""
    width, height = mask.size
    box = mask_bbox(mask) or (0, 0, width, height)
    x0, y0 = max(box[0] - margin, 0), max(box[1] - margin, 0)
    x1, y1 = min(box[2] + margin, width), min(box[3] + margin, height)
    w, h = x1 - x0, y1 - y0
    if w / h < aspect:
        w = min(round(h * aspect), width)
    else:
        h = min(round(w / aspect), height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    nx0 = int(min(max(round(cx - w / 2), 0), width - w))
    ny0 = int(min(max(round(cy - h / 2), 0), height - h))
    return nx0, ny0, nx0 + w, ny0 + h


def whole_latent_blocks(mask: Image.Image, factor: int = 8) -> Image.Image:
    """The mask with every factor x factor block holding a pixel to repaint (>= 128) made white. diffusers' inpaint
    pipelines take the latent mask as each block's top-left pixel (nearest), so a stroke narrower than a block, or a
    region's top and left rim, would be dropped or kept by where it lies. ComfyUI (bilinear) and A1111 (the block's
    average, rounded) keep a 6-px stroke; this keeps any stroke, and the paste-back still follows the mask itself."""
    repaint = np.asarray(mask.convert("L")) >= 128
    height, width = repaint.shape
    rows, columns = -(-height // factor), -(-width // factor)
    padded = np.zeros((rows * factor, columns * factor), dtype=bool)
    padded[:height, :width] = repaint
    blocks = padded.reshape(rows, factor, columns, factor).any(axis=(1, 3))
    whole = blocks.repeat(factor, axis=0).repeat(factor, axis=1)[:height, :width]
    return Image.fromarray(whole.astype(np.uint8) * 255)


def feathered(mask: Image.Image, radius: int) -> Image.Image:
    return mask.filter(ImageFilter.GaussianBlur(radius)) if radius > 0 else mask


IMPACT_SIGMA = 10.0


def impact_feathered(mask, feather: int):
    """Impact Pack's tensor_gaussian_blur_mask on a [1, 1, h, w] mask tensor (the crop's): torchvision's
    GaussianBlur with sigma 10 and a kernel of 2 x feather + 1, cut to about half the shorter side (odd) when it
    does not fit, and no blur under 3. `feather` bounds the blur's reach; sigma stays 10."""
    if feather <= 0:
        return mask
    kernel = feather * 2 + 1
    shortest = min(mask.shape[-2:])
    if shortest <= kernel:
        kernel = int(shortest / 2)
        kernel += 1 if kernel % 2 == 0 else 0
        if kernel < 3:
            return mask
    from torchvision.transforms import GaussianBlur

    return GaussianBlur(kernel_size=kernel, sigma=IMPACT_SIGMA)(mask)


def outpaint_canvas(image: Image.Image, top: int, right: int, bottom: int, left: int) -> tuple[Image.Image, Image.Image]:
    """The image on a larger canvas whose new border repeats the edge pixels, and the mask of that border (white)."""
    pixels = np.asarray(image.convert("RGB"))
    canvas = np.pad(pixels, ((top, bottom), (left, right), (0, 0)), mode="edge")
    mask = np.full(canvas.shape[:2], 255, dtype=np.uint8)
    mask[top : top + pixels.shape[0], left : left + pixels.shape[1]] = 0
    return Image.fromarray(canvas), Image.fromarray(mask)
