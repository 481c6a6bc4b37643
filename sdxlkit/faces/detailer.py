"""The face detailer post-pass, Impact Pack's FaceDetailer algorithm (DetailerForEach) on diffusers.

For each box the detector finds at `confidence` (in the detector's order): the box is grown by `padding` pixels
(Impact's bbox_dilation) and kept inside the image; that rectangle is the mask. The crop around it is the box
scaled by CROP_FACTOR (Impact's crop_factor 3.0) about its centre, shifted to lie inside the image. The crop is
resized so its longer side is `inpaint_size` (both sides multiples of 8), inpainted under the mask with exactly
`steps` UNet evaluations at `strength` with seed + face index, decoded, resized back and pasted into the image
with the crop's mask feathered as Impact's tensor_gaussian_blur_mask (sigma 10, a kernel of 2 x `blur` + 1). Faces are done one after another, each on the
image the previous one left. No face found: the image is returned unchanged (and that is logged). With PhotoMaker
the face pass is conditioned with the identity like the run's other passes (its prompt carries the trigger word).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from .. import vae
from ..generate import Generation, _paste, _source_latents, prompt_embeds, to_pil, unet_parts
from ..sampling import DenoisePass, denoise, schedule_for
from .yolo import DETECTORS

log = logging.getLogger(__name__)

CROP_FACTOR = 3.0


@dataclass(frozen=True)
class FaceDetailer:
    detector: Path
    confidence: float
    padding: int
    blur: int
    inpaint_size: int
    steps: int
    cfg: float
    strength: float
    prompt: str | None = None  # None: the task's prompt
    negative_prompt: str | None = None


def face_box(box, padding: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The detected box (float pixels) grown by `padding` on each side, on whole pixels, inside the image."""
    width, height = size
    return (max(math.floor(box.x0) - padding, 0), max(math.floor(box.y0) - padding, 0),
            min(math.ceil(box.x1) + padding, width), min(math.ceil(box.y1) + padding, height))


def crop_box(face: tuple[int, int, int, int], size: tuple[int, int], factor: float = CROP_FACTOR) -> tuple[int, int, int, int]:
    """`factor` times the face box about its centre, no larger than the image, shifted to lie inside it."""
    width, height = size
    x0, y0, x1, y1 = face
    w, h = min(round((x1 - x0) * factor), width), min(round((y1 - y0) * factor), height)
    left = min(max(round((x0 + x1) / 2 - w / 2), 0), width - w)
    top = min(max(round((y0 + y1) / 2 - h / 2), 0), height - h)
    return left, top, left + w, top + h


def pass_size(crop: tuple[int, int, int, int], inpaint_size: int) -> tuple[int, int]:
    """The crop's size scaled so its longer side is `inpaint_size`, both sides rounded to multiples of 8."""
    w, h = crop[2] - crop[0], crop[3] - crop[1]
    scale = inpaint_size / max(w, h)
    return max(8, round(w * scale / 8) * 8), max(8, round(h * scale / 8) * 8)


def _face_pass(components, gen: Generation, image: torch.Tensor, face, seed: int, embeds, on_step) -> torch.Tensor:
    settings = gen.faces
    full = to_pil(image)[0]
    crop = crop_box(face, full.size)
    size = pass_size(crop, settings.inpaint_size)
    mask = Image.new("L", full.size, 0)
    ImageDraw.Draw(mask).rectangle((face[0], face[1], face[2] - 1, face[3] - 1), fill=255)
    face_gen = replace(gen, cfg=settings.cfg, steps=schedule_for(settings.steps, settings.strength))
    p = DenoisePass(kind="inpaint", width=size[0], height=size[1], steps=face_gen.steps, cfg=settings.cfg,
                    scheduler=gen.scheduler, seeds=[seed], embeds=embeds,
                    parts=unet_parts(components, face_gen, embeds, crop, size),
                    image_latents=_source_latents(components, full.crop(crop).resize(size, Image.LANCZOS), [seed]),
                    mask=mask.crop(crop).resize(size, Image.NEAREST), strength=settings.strength)
    return _paste(image, vae.decode(components, denoise(components, p, on_step)), mask, crop, settings.blur, impact=True)


def detail_faces(components, gen: Generation, image: torch.Tensor, seed: int, on_step=None, detector=None) -> torch.Tensor:
    """`image` [1,3,H,W] with every face the detector (default: the settings' file) finds repainted; face i uses
    seed + i. Unchanged without face detailer settings."""
    settings = gen.faces
    if settings is None:
        return image
    detector = detector or DETECTORS.get(settings.detector, components.device)
    boxes = detector.detect(to_pil(image)[0], settings.confidence)
    if not boxes:
        log.info("face detailer: no face found at confidence %s (seed %d); the image is unchanged",
                 settings.confidence, seed)
        return image
    if settings.strength == 0:
        return image
    embeds = prompt_embeds(components, gen, settings.prompt or gen.prompt,
                           gen.negative_prompt if settings.negative_prompt is None else settings.negative_prompt,
                           settings.cfg, photomaker=gen.photomaker)
    size = (image.shape[-1], image.shape[-2])
    for index, box in enumerate(boxes):
        face = face_box(box, settings.padding, size)
        if face[2] <= face[0] or face[3] <= face[1]:
            continue
        image = _face_pass(components, gen, image, face, seed + index, embeds, on_step)
    log.info("face detailer: repainted %d face(s) (seed %d)", len(boxes), seed)
    return image
