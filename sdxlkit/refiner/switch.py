"""When the refiner takes over, and the conditioning it expects. No torch.

`refiner.startStep` is the index in the run's schedule of the first step the refiner denoises; the base runs the
steps before it. `startStepPercentage` is the same as a percentage of `steps`, rounded down (A1111's "switch at"
and ComfyUI's KSamplerAdvanced end_at_step/start_at_step split the same way). img2img and inpaint run the last
int(steps * strength) steps of that schedule, so the refiner must take over after the first of them.

Aesthetic scores: the refiner's UNet is conditioned on an aesthetic score in its time ids; as in diffusers
(StableDiffusionXLImg2ImgPipeline) and ComfyUI (CLIPTextEncodeSDXLRefiner's ascore), 6.0 for the prompt and 2.5
for the negative prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

AESTHETIC_SCORE = 6.0
DEFAULT_SWITCH_PERCENT = 80  # diffusers' documented split (denoising_end=0.8)
NEGATIVE_AESTHETIC_SCORE = 2.5


def switch_step(steps: int, start_step: int | None = None, start_percent: int | None = None) -> int:
    """The index of the refiner's first step (the base runs steps 0 .. switch-1); by default DEFAULT_SWITCH_PERCENT."""
    if start_step is not None:
        return start_step
    return steps * (DEFAULT_SWITCH_PERCENT if start_percent is None else start_percent) // 100


def first_step(steps: int, strength: float | None) -> int:
    """The first step of the schedule an img2img/inpaint pass runs at `strength` (diffusers' get_timesteps)."""
    return 0 if strength is None else steps - min(int(steps * strength), steps)


@dataclass(frozen=True)
class RefinerRequest:
    """The task's refiner: its file and the step where it takes over."""

    path: Path
    switch: int
    aesthetic_score: float = AESTHETIC_SCORE
    negative_aesthetic_score: float = NEGATIVE_AESTHETIC_SCORE
