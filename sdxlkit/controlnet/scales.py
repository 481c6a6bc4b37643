"""The arithmetic of ControlNet guidance: A1111's control modes as per-residual scales, and step windows.

Residuals are ordered as the UNet consumes them: the down-block residuals (shallowest first), then the middle one.
A1111 defines its "soft" scales over the 13 residuals of SD1.5 (12 down + middle): residual i gets 0.825^(12-i).
SDXL has 10 (9 down + middle) and A1111 keeps the first 10 of those 13 scales: 0.825^12 ... 0.825^3.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

CONTROL_MODES = ("balanced", "prompt", "controlnet")
SOFT_BASE = 0.825
SOFT_TOP = 12


def residual_scales(mode: str, weight: float, count: int) -> list[float]:
    """Multipliers for the `count` residuals: balanced = weight everywhere; prompt/controlnet = weight x 0.825^(12-i)."""
    if mode not in CONTROL_MODES:
        raise ValueError(f"controlMode {mode!r}; allowed: {', '.join(CONTROL_MODES)}")
    if mode == "balanced":
        return [float(weight)] * count
    return [float(weight) * SOFT_BASE ** (SOFT_TOP - i) for i in range(count)]


def zeroes_uncond(mode: str) -> bool:
    """'ControlNet is more important': control reaches only the conditional half of classifier-free guidance."""
    return mode == "controlnet"


@dataclass(frozen=True)
class StepWindow:
    """When a ControlNet acts, as exact fractions of the run: step i of `total` is inside when
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
    """The window of a controlNet[] entry: absolute steps or percentages of `steps`, defaulting to all steps."""
    start = Fraction(start_step, steps) if start_step is not None else Fraction(start_percent or 0, 100)
    end = Fraction(end_step, steps) if end_step is not None else Fraction(100 if end_percent is None else end_percent, 100)
    return StepWindow(start, end)
