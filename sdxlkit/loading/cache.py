"""Loaded models kept across runs, keyed by ModelSpec (files + options), released on request."""

from __future__ import annotations

import gc
import threading

from .components import SDXLComponents
from .loader import ModelSpec, load_sdxl


class ModelCache:
    """Keeps at most `capacity` loaded models; the least recently used goes first."""

    def __init__(self, capacity: int = 1):
        self.capacity = capacity
        self._models: dict[tuple, SDXLComponents] = {}
        self._lock = threading.Lock()
        self.loads = 0

    def get(self, spec: ModelSpec) -> SDXLComponents:
        key = spec.cache_key()
        with self._lock:
            if key in self._models:
                self._models[key] = self._models.pop(key)  # most recently used last
                return self._models[key]
            while len(self._models) >= self.capacity:
                self._models.pop(next(iter(self._models)))
            model = load_sdxl(spec)
            self.loads += 1
            self._models[key] = model
            return model

    def release(self) -> int:
        """Drop every cached model and return how many were dropped."""
        with self._lock:
            count = len(self._models)
            self._models.clear()
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass
        return count


MODEL_CACHE = ModelCache()
# The refiner has a cache of its own, so that loading it does not evict the base model it works with: both stay
# loaded on the device (about 10 GB together in bf16 for SDXL base + refiner).
REFINER_CACHE = ModelCache()
