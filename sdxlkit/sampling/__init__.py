"""Denoising passes and the UNet parts that act during them."""

from .passes import DenoisePass, denoise, schedule_for
from .unet import PassUNet, UNetCall, UNetPart, assembled_unet

__all__ = ["DenoisePass", "denoise", "schedule_for", "PassUNet", "UNetCall", "UNetPart", "assembled_unet"]
