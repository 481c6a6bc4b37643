"""The hand-off: the base model's pass stops at the switch step, the refiner finishes the same schedule.

As diffusers' ensemble of experts: the base pass gets `denoising_end`, the refiner pass `denoising_start` with
the base's latents as its image (no noise added). diffusers cuts at a whole timestep; the fraction given to both
names the whole timestep just above the switch step's (switch.cut_timestep), so the split falls exactly at the step
index whatever the spacing (a fraction of switch/steps can move a "leading"-spaced step to the wrong side, and a
midpoint between two timesteps rounds to the wrong side where they are less than two apart). Together the
passes run each step of the schedule once: `steps` UNet evaluations for txt2img, the strength's share for
img2img/inpaint.

txt2img hands its latents to the refiner as img2img; img2img and inpaint stay what they are (the refiner's
inpaint pass keeps the unmasked region from the base's latents, as diffusers' documented refiner inpainting).
The refiner's pass has no UNet parts of the base (ControlNets are built for the base UNet's architecture).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..loading.cache import REFINER_CACHE
from ..loading.components import SDXLComponents
from ..loading.loader import ModelSpec
from ..sampling import DenoisePass, denoise
from ..sampling.passes import OnStep
from ..errors import SdxlKitError
from .switch import RefinerRequest, cut_problem, cut_timestep, step_timesteps


def switch_fraction(components: SDXLComponents, p: DenoisePass, switch: int) -> float:
    """The denoising_end / denoising_start that splits the pass's schedule before step `switch`."""
    timesteps = step_timesteps(p.scheduler, components.scheduler_config, p.steps, seed=p.seeds[0])
    problem = cut_problem(timesteps, p.steps, switch, p.scheduler)
    if problem:
        raise SdxlKitError(problem)
    return 1 - cut_timestep(timesteps, switch) / components.scheduler_config.get("num_train_timesteps", 1000)


def refiner_components(base: SDXLComponents, refiner: SDXLComponents) -> SDXLComponents:
    """The refiner with the base's VAE (same latent space; the refiner is loaded without one) and the base's
    scheduler config, so both passes follow one schedule."""
    return replace(refiner, vae=base.vae, vae_fp16_safe=base.vae_fp16_safe, scheduler_config=base.scheduler_config)


_PRECISIONS = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def load_refiner(base: SDXLComponents, request: RefinerRequest) -> SDXLComponents:
    """The refiner of `request`, loaded (REFINER_CACHE) on the base model's device in its precision and memory mode."""
    return REFINER_CACHE.get(ModelSpec(checkpoint=request.path, precision=_PRECISIONS[base.dtype], device=base.device,
                                       role="refiner", memory=base.residency.memory))


@dataclass
class Refining:
    """A run's refiner: the loaded model, the prompt embeddings made with its text encoder, the hand-off step."""

    components: SDXLComponents
    embeds: object  # sdxlkit.prompts.PromptEmbeds
    request: RefinerRequest


def hand_off(base: SDXLComponents, refining: Refining, p: DenoisePass, on_step: OnStep | None = None) -> torch.Tensor:
    """Latents of pass `p` run by the base up to the switch step and by the refiner after it."""
    request, refiner = refining.request, refining.components
    fraction = switch_fraction(base, p, request.switch)
    base_steps = [0]

    def base_step(done: int, total: int) -> None:
        base_steps[0] = total
        if on_step is not None:
            on_step(done, total + p.steps - request.switch)

    def refiner_step(done: int, total: int) -> None:
        if on_step is not None:
            on_step(base_steps[0] + done, base_steps[0] + total)

    latents = denoise(base, replace(p, denoising_end=fraction), base_step)
    second = replace(p, kind="img2img" if p.kind == "txt2img" else p.kind, embeds=refining.embeds, parts=[],
                     image_latents=latents, strength=p.strength or 1.0, denoising_start=fraction,
                     aesthetic_score=request.aesthetic_score, negative_aesthetic_score=request.negative_aesthetic_score)
    return denoise(refiner_components(base, refiner), second, refiner_step)
