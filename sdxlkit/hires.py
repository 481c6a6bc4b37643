"""Hires fix, a post-pass: generate smaller, upscale with an upscaler model, refine at the final size.

The task's width x height is the final size. The base image (the task's mode: txt2img, img2img, inpaint) is made
at `first_pass_size`: the final aspect at about SDXL's native area (1024x1024 = 1 MP), or at half the final sides when
the final image is not larger than that; always a multiple of 8 and below the final size. The result is upscaled
by the upscaler model (x4, in tiles), resized to the final size (bicubic, antialiased) and refined by an img2img
pass (inpaint with the task's mask in inpaint mode) of exactly `steps` UNet evaluations at `strength`, with new
noise from the image's seed: A1111's and ComfyUI's hires semantics. ControlNet guides act in both passes, each
time resized to that pass's size. Strength 0 skips the refine pass (the upscaled image is the result).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .generate import Generation, img2img, inpaint, over_seed_image, to_pil
from .sampling import schedule_for
from .upscale import UPSCALERS, upscale

NATIVE_AREA = 1024 * 1024


@dataclass(frozen=True)
class HiresFix:
    upscaler: Path
    steps: int
    strength: float
    first_pass_area: int = NATIVE_AREA


def _multiple_of_8(value: float) -> int:
    return max(8, int(value) // 8 * 8)


def first_pass_size(width: int, height: int, area: int = NATIVE_AREA) -> tuple[int, int]:
    scale = math.sqrt(area / (width * height))
    if scale >= 1:
        scale = 0.5
    return min(_multiple_of_8(width * scale), width - 8), min(_multiple_of_8(height * scale), height - 8)


def upscaled(components, image: torch.Tensor, upscaler: Path, size: tuple[int, int]) -> torch.Tensor:
    """`image` [1,3,h,w] through the upscaler model, then resized to `size` (width, height)."""
    big = upscale(UPSCALERS.get(upscaler, components.device), image)
    if big.shape[-2:] != (size[1], size[0]):
        big = torch.nn.functional.interpolate(big, size=(size[1], size[0]), mode="bicubic", antialias=True)
    return big.clamp(0, 1)


def first_pass(gen: Generation) -> Generation:
    """The generation of the base image: `gen` at the first-pass size under a hires fix, else `gen` itself."""
    if gen.hires is None:
        return gen
    width, height = first_pass_size(gen.width, gen.height, gen.hires.first_pass_area)
    return replace(gen, width=width, height=height)


def hires_fix(components, gen: Generation, image: torch.Tensor, seed: int, embeds, on_step) -> torch.Tensor:
    """The first pass's `image` upscaled to the final size and refined; unchanged without a hires fix."""
    hires = gen.hires
    if hires is None:
        return image
    image = upscaled(components, image, hires.upscaler, (gen.width, gen.height))
    if gen.mode == "inpaint":  # only the mask is repainted: the rest stays the seed image, not its upscaled copy
        image = over_seed_image(gen, image)
    if hires.strength == 0:
        return image
    refine = replace(gen, seed_image=to_pil(image)[0], outpaint=None, steps=schedule_for(hires.steps, hires.strength),
                     strength=hires.strength)
    return (inpaint if gen.mode == "inpaint" else img2img)(components, refine, [seed], embeds, on_step)
