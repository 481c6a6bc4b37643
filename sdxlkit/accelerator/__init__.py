"""The accelerator cache (acceleratorOptions): DeepCache and a first-block cache, each a UNet part made per pass."""

from .request import FIRST_BLOCK_THRESHOLD_PER_DISTANCE, AcceleratorRequest, accelerator_request
from .deep_cache import DeepCachePart
from .first_block import FirstBlockCachePart
from .schedule import CacheSchedule

__all__ = ["FIRST_BLOCK_THRESHOLD_PER_DISTANCE", "AcceleratorRequest", "accelerator_request", "DeepCachePart",
           "FirstBlockCachePart", "CacheSchedule"]
