"""Denoising passes and the UNet parts that act during them."""

from .passes import DenoisePass, denoise
from .unet import PassUNet, UNetCall, UNetPart, assembled_unet

__all__ = ["DenoisePass", "denoise", "PassUNet", "UNetCall", "UNetPart", "assembled_unet"]
