"""The SDXL refiner hand-off: the base model denoises the first steps, the refiner finishes on the same schedule."""

from .switch import AESTHETIC_SCORE, NEGATIVE_AESTHETIC_SCORE, RefinerRequest, switch_step

__all__ = ["AESTHETIC_SCORE", "NEGATIVE_AESTHETIC_SCORE", "RefinerRequest", "switch_step"]
