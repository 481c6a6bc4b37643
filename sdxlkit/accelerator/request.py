"""acceleratorOptions as the engine runs them.

`teaCache` on SDXL runs the first-block cache (first_block.py): TeaCache proper rescales its input-change measure
with a polynomial fitted per model, and neither TeaCache nor ComfyUI-TeaCache has coefficients for a UNet; the
first-block cache is the same idea (reuse the rest of the network while the first block's residual barely moves)
with a measure that needs no fitting, the one Comfy-WaveSpeed applies to SDXL. `teaCacheDistance` (0 = quality,
1 = speed) scales its threshold linearly: threshold = 0.24 x distance, so the schema's default 0.5 gives
ParaAttention's default residual_diff_threshold 0.12 and 0 never reuses anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..sampling.unet import UNetPart
from ..sampling.window import step_window
from ..task import schema
from .schedule import CacheSchedule

FIRST_BLOCK_THRESHOLD_PER_DISTANCE = 0.24


@dataclass(frozen=True)
class AcceleratorRequest:
    deep_cache: bool
    interval: int
    branch: int
    first_block: bool
    distance: float
    schedule: CacheSchedule

    def parts(self) -> list[UNetPart]:
        """Fresh parts for one pass, outermost first: a first-block hit skips everything else, DeepCache included."""
        from .deep_cache import DeepCachePart
        from .first_block import FirstBlockCachePart

        parts: list[UNetPart] = []
        if self.first_block:
            parts.append(FirstBlockCachePart(FIRST_BLOCK_THRESHOLD_PER_DISTANCE * self.distance, self.schedule))
        if self.deep_cache and self.interval > 1:
            parts.append(DeepCachePart(self.interval, self.branch, self.schedule))
        return parts


def accelerator_request(options: dict | None, steps: int) -> AcceleratorRequest | None:
    """The task's acceleratorOptions with the schema's defaults; None when no cache is asked for."""
    if not options or not (options.get("deepCache") or options.get("teaCache")):
        return None

    def get(name: str):
        return options.get(name, schema.default(f"acceleratorOptions.{name}"))

    window = step_window(steps, options.get("cacheStartStep"), options.get("cacheStartStepPercentage"),
                         options.get("cacheEndStep"), options.get("cacheEndStepPercentage"))
    return AcceleratorRequest(
        deep_cache=bool(get("deepCache")), interval=int(get("deepCacheInterval")), branch=int(get("deepCacheBranchId")),
        first_block=bool(get("teaCache")), distance=float(get("teaCacheDistance")),
        schedule=CacheSchedule(window, int(get("cacheMaxConsecutiveSteps"))))
