"""One denoising pass through diffusers' SDXL pipelines (txt2img, img2img or inpaint), latents in and out.

Generation modes and post-passes (hires fix, refiner, face detailer) are each a function that builds a
`DenoisePass` and runs it here; what acts on the UNet during the pass comes in as parts (see unet.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from PIL import Image

from ..loading.components import SDXLComponents
from ..loading.residency import make_room, using, working_bytes
from ..schedulers import batchable, make_scheduler
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

    def runs_no_step(self) -> bool:
        return self.kind != "txt2img" and int(self.steps * self.strength) < 1


def _pipeline(kind: str, components: SDXLComponents, scheduler, unet):
    from diffusers import (
        StableDiffusionXLImg2ImgPipeline,
        StableDiffusionXLInpaintPipeline,
        StableDiffusionXLPipeline,
    )

    cls = {"txt2img": StableDiffusionXLPipeline, "img2img": StableDiffusionXLImg2ImgPipeline,
           "inpaint": StableDiffusionXLInpaintPipeline}[kind]
    pipe = cls(**(components.modules() | {"unet": unet}), scheduler=scheduler, force_zeros_for_empty_prompt=True,
               add_watermarker=False)
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
                  width=p.width, height=p.height, output_type="latent", callback_on_step_end=callback)
    if p.kind != "txt2img":
        kwargs.update(image=p.image_latents, strength=p.strength)
    if p.kind == "inpaint":
        kwargs.update(mask_image=p.mask)
    make_room(components, working_bytes(p.width, p.height, components.dtype.itemsize, len(p.seeds)))
    with using(components, "unet"), assembled_unet(components.unet, p.parts, scheduler) as unet:
        return _pipeline(p.kind, components, scheduler, unet)(**kwargs).images
