"""Which steps of a pass may reuse cached features: inside the cache window, after a fully computed step, and never
more than a limit of cached steps in a row (a full step is then forced)."""

from __future__ import annotations

from dataclasses import dataclass

from ..sampling.window import StepWindow


@dataclass(frozen=True)
class CacheSchedule:
    window: StepWindow
    max_consecutive: int  # cacheMaxConsecutiveSteps

    def may_cache(self, step: int, total: int, cached_in_a_row: int, limit: int | None = None) -> bool:
        """Whether step `step` of `total` may be served from the cache, `cached_in_a_row` steps right before it
        having been; `limit` lowers the run length further (DeepCache's interval)."""
        most = self.max_consecutive if limit is None else min(limit, self.max_consecutive)
        return self.window.active(step, total) and cached_in_a_row < most
