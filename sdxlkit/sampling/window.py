"""Step windows: which denoising steps of a pass a feature acts at (ControlNets, the accelerator cache)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class StepWindow:
    """When a feature acts, as exact fractions of the run: step i of `total` is inside when
    start * total <= i and i + 1 <= end * total.

    With steps given as absolute numbers, start = startStep / steps, so on a run of `steps` steps the window is exactly
    startStep <= i < endStep. As in diffusers, fractions count denoising steps (ComfyUI's percents count noise levels),
    and an img2img run, which does fewer steps, spreads the same fractions over the steps it does.
    """

    start: Fraction
    end: Fraction

    def active(self, index: int, total: int) -> bool:
        return self.start * total <= index and index + 1 <= self.end * total


def step_window(steps: int, start_step: int | None = None, start_percent: int | None = None,
                end_step: int | None = None, end_percent: int | None = None) -> StepWindow:
    """The window of a controlNet[] entry or of acceleratorOptions: absolute steps or percentages of `steps`,
    defaulting to all steps."""
    start = Fraction(start_step, steps) if start_step is not None else Fraction(start_percent or 0, 100)
    end = Fraction(end_step, steps) if end_step is not None else Fraction(100 if end_percent is None else end_percent, 100)
    return StepWindow(start, end)
