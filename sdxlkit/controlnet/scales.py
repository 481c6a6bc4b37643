"""The arithmetic of ControlNet guidance: A1111's control modes as per-residual scales.

Residuals are ordered as the UNet consumes them: the down-block residuals (shallowest first), then the middle one.
A1111 defines its "soft" scales over the 13 residuals of SD1.5 (12 down + middle): residual i gets 0.825^(12-i).
SDXL has 10 (9 down + middle) and A1111 keeps the first 10 of those 13 scales: 0.825^12 ... 0.825^3.
"""

from __future__ import annotations

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
