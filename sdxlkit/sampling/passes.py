"""One denoising pass through diffusers' SDXL pipelines (txt2img, img2img or inpaint), latents in and out.

Generation modes and post-passes (hires fix, refiner, face detailer) are each a function that builds a
`DenoisePass` and runs it here; what acts on the UNet during the pass comes in as parts (see unet.py).

A pass may cover part of a schedule, as diffusers' ensemble of experts does: `denoising_end` stops it early and
returns still-noisy latents, `denoising_start` continues such latents (given as `image_latents`, without adding
noise) on the same schedule. The components say which model runs the pass; a UNet conditioned on an aesthetic
score (the SDXL refiner's) gets `aesthetic_score` / `negative_aesthetic_score` in its time ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from PIL import Image

from ..loading.components import SDXLComponents
from ..loading.residency import make_room, using, working_bytes
from ..masking import whole_latent_blocks
from ..schedulers import batchable, make_scheduler
from .token_mask import token_mask_parts
from .unet import UNetPart, assembled_unet

OnStep = Callable[[int, int], None]
KINDS = ("txt2img", "img2img", "inpaint")


@dataclass
class DenoisePass:
    kind: str
    width: int
    height: int
    steps: int
    cfg: float
    scheduler: str
    seeds: list[int]  # one image per seed, denoised as one batch; image i's noise comes from seeds[i] alone
    embeds: object  # sdxlkit.prompts.PromptEmbeds
    parts: list[UNetPart] = field(default_factory=list)
    image_latents: torch.Tensor | None = None  # img2img / inpaint source, already encoded
    mask: Image.Image | None = None  # inpaint: white = repaint
    strength: float | None = None
    denoising_start: float | None = None  # fraction of the schedule already denoised (diffusers' denoising_start)
    denoising_end: float | None = None  # fraction of the schedule at which the pass stops (diffusers' denoising_end)
    aesthetic_score: float = 6.0  # refiner conditioning (diffusers' defaults); base models ignore them
    negative_aesthetic_score: float = 2.5

    def runs_no_step(self) -> bool:
        return self.kind != "txt2img" and int(self.steps * self.strength) < 1


def _takes_aesthetic_score(components: SDXLComponents) -> bool:
    """Whether the UNet's time ids end with an aesthetic score (5 numbers) instead of a target size (6), read off
    its added-embedding width as diffusers' _get_add_time_ids checks it."""
    config = components.unet.config
    width = config.projection_class_embeddings_input_dim - components.text_encoder_2.config.projection_dim
    return width == 5 * config.addition_time_embed_dim


def _pipeline(kind: str, components: SDXLComponents, scheduler, unet):
    from diffusers import (
        StableDiffusionXLImg2ImgPipeline,
        StableDiffusionXLInpaintPipeline,
        StableDiffusionXLPipeline,
    )

    cls = {"txt2img": StableDiffusionXLPipeline, "img2img": StableDiffusionXLImg2ImgPipeline,
           "inpaint": StableDiffusionXLInpaintPipeline}[kind]
    extra = {} if kind == "txt2img" else {"requires_aesthetics_score": _takes_aesthetic_score(components)}
    pipe = cls(**(components.modules() | {"unet": unet}), scheduler=scheduler, force_zeros_for_empty_prompt=True,
               add_watermarker=False, **extra)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def denoise(components: SDXLComponents, p: DenoisePass, on_step: OnStep | None = None) -> torch.Tensor:
    """The pass's latents; on_step(done, total) after every step. A pass that runs no step at its strength keeps
    its source latents (diffusers would refuse)."""
    if p.kind not in KINDS:
        raise ValueError(f"pass kind {p.kind!r}; allowed: {', '.join(KINDS)}")
    if p.runs_no_step():
        return p.image_latents
    if len(p.seeds) > 1 and not batchable(p.scheduler):
        raise ValueError(f"scheduler {p.scheduler!r} draws one noise for the whole batch: run its seeds one by one")
    scheduler = make_scheduler(p.scheduler, components.scheduler_config, seed=p.seeds[0])

    def callback(pipe, i, t, kwargs):
        if on_step is not None:
            on_step(i + 1, pipe.num_timesteps)
        return kwargs

    e = p.embeds
    kwargs = dict(prompt_embeds=e.prompt_embeds, pooled_prompt_embeds=e.pooled_prompt_embeds,
                  negative_prompt_embeds=e.negative_prompt_embeds,
                  negative_pooled_prompt_embeds=e.negative_pooled_prompt_embeds,
                  num_inference_steps=p.steps, guidance_scale=p.cfg,
                  generator=[torch.Generator("cpu").manual_seed(seed) for seed in p.seeds],
                  num_images_per_prompt=len(p.seeds),
                  width=p.width, height=p.height, output_type="latent", callback_on_step_end=callback,
                  denoising_end=p.denoising_end)
    if p.kind != "txt2img":
        kwargs.update(image=p.image_latents, strength=p.strength, denoising_start=p.denoising_start,
                      aesthetic_score=p.aesthetic_score, negative_aesthetic_score=p.negative_aesthetic_score)
    if p.kind == "inpaint":
        kwargs.update(mask_image=whole_latent_blocks(p.mask))
    make_room(components, working_bytes(p.width, p.height, components.dtype.itemsize, len(p.seeds)))
    parts = token_mask_parts(e, guidance=p.cfg > 1) + p.parts  # outermost: every part inside sees the mask
    with using(components, "unet"), assembled_unet(components.unet, parts, scheduler) as unet:
        return _pipeline(p.kind, components, scheduler, unet)(**kwargs).images
