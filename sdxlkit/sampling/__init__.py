"""Denoising passes and the UNet parts that act during them."""

from ..schedulers import schedule_for
from .passes import DenoisePass, denoise
from .unet import PassUNet, UNetCall, UNetPart, assembled_unet

__all__ = ["DenoisePass", "denoise", "schedule_for", "PassUNet", "UNetCall", "UNetPart", "assembled_unet"]
