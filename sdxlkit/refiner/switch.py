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

import math
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


def step_timesteps(scheduler_name: str, scheduler_config: dict, steps: int, seed: int | None = None) -> list[float]:
    """The timestep of each step of the schedule `steps` gives the named scheduler."""
    from ..schedulers import make_scheduler

    scheduler = make_scheduler(scheduler_name, scheduler_config, seed=seed)
    scheduler.set_timesteps(steps)
    return scheduler.timesteps[::scheduler.order].tolist()  # second-order schedulers repeat each timestep


def cut_timestep(timesteps: list[float], switch: int) -> int | None:
    """The whole timestep that splits a schedule before step `switch`. diffusers cuts at a whole timestep
    (denoising_end / denoising_start f become int(round(N - f * N))): the base runs the steps at or above it, the
    refiner those below. None when the timesteps of steps switch - 1 and switch are less than one apart (the
    Karras and exponential tails, IPNDM's rounded ones), where no whole timestep falls between them."""
    cut = math.floor(timesteps[switch]) + 1
    return cut if cut <= timesteps[switch - 1] else None


def cut_problem(timesteps: list[float], steps: int, switch: int, scheduler_name: str) -> str | None:
    """Why the refiner cannot take over at `switch` of a `steps`-step schedule with these timesteps (naming the
    latest step it can), else None."""
    if len(timesteps) != steps:  # PNDM's warm-up repeats a timestep: the cut would not count steps
        return (f"{scheduler_name!r} runs {len(timesteps)} UNet evaluations for {steps} steps, so no cut by timestep "
                "gives the base and the refiner their steps; with a refiner use another scheduler")
    if cut_timestep(timesteps, switch) is not None:
        return None
    latest = next((s for s in range(switch - 1, 0, -1) if cut_timestep(timesteps, s) is not None), None)
    advice = f"take over at step {latest} or earlier" if latest else "use another scheduler"
    return (f"the refiner cannot take over at step {switch} of {steps} with {scheduler_name!r}: the timesteps "
            f"of steps {switch - 1} and {switch} ({timesteps[switch - 1]:.3f} and {timesteps[switch]:.3f}) are less "
            f"than one apart, and the hand-off cuts the schedule at a whole timestep; {advice}")


@dataclass(frozen=True)
class RefinerRequest:
    """The task's refiner: its file and the step where it takes over."""

    path: Path
    switch: int
    aesthetic_score: float = AESTHETIC_SCORE
    negative_aesthetic_score: float = NEGATIVE_AESTHETIC_SCORE
