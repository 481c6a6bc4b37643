"""VAE decode and encode with the NaN guard: a non-finite result is redone in float32, never returned.

The SDXL VAE overflows float16 (activations beyond +-65504 become inf, then NaN: a black image). Each image is
checked after decode/encode; a bad one is redone with a float32 copy of the VAE and a warning is logged.
Large images are encoded and decoded in tiles, and so is any decode that runs out of memory.
"""

from __future__ import annotations

import copy
import logging

import torch

from .errors import SdxlKitError, out_of_memory
from .loading.components import SDXLComponents
from .loading.residency import using

log = logging.getLogger(__name__)

# Above this many output pixels the decode is tiled up front (2048x1024 and larger).
TILE_ABOVE_PIXELS = 2048 * 1024


def _vae_fp32(components: SDXLComponents):
    if components.vae.dtype == torch.float32:
        return components.vae
    if components.vae_fp32 is None:
        components.vae_fp32 = copy.deepcopy(components.vae).to(torch.float32)
    return components.vae_fp32


def _decode_one(vae, z: torch.Tensor, tile: bool) -> torch.Tensor:
    z = z.to(device=vae.device, dtype=vae.dtype)
    if tile:
        return vae.tiled_decode(z).sample
    try:
        return vae.decode(z).sample
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not out_of_memory(exc):
            raise
        log.warning("VAE decode ran out of memory; retrying in tiles")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return vae.tiled_decode(z).sample


def decode(components: SDXLComponents, latents: torch.Tensor) -> torch.Tensor:
    """Latents [B,4,h,w] (scaled as the UNet sees them) -> images [B,3,H,W] float32 in 0..1 on the CPU."""
    with using(components, "vae"):
        return _decode(components, latents)


def _decode(components: SDXLComponents, latents: torch.Tensor) -> torch.Tensor:
    vae = components.vae
    scale = vae.config.scaling_factor
    tile = latents.shape[-1] * latents.shape[-2] * 64 > TILE_ABOVE_PIXELS
    images = []
    for i in range(latents.shape[0]):
        z = latents[i : i + 1] / scale
        image = _decode_one(vae, z, tile).float()
        if not torch.isfinite(image).all():
            log.warning("VAE decode in %s gave NaN/inf (image %d); redoing it in float32", vae.dtype, i)
            image = _decode_one(_vae_fp32(components), z.float(), tile).float()
            if not torch.isfinite(image).all():
                raise SdxlKitError("VAE decode gave NaN/inf even in float32: the latents or the VAE weights are broken")
        images.append((image / 2 + 0.5).clamp(0, 1).cpu())
    return torch.cat(images)


def _distribution(vae, pixels: torch.Tensor):
    pixels = pixels.to(device=vae.device, dtype=vae.dtype)
    tile = pixels.shape[-1] * pixels.shape[-2] > TILE_ABOVE_PIXELS
    return (vae.tiled_encode(pixels) if tile else vae.encode(pixels)).latent_dist


def _finite(dist) -> bool:
    return bool(torch.isfinite(dist.mean).all() and torch.isfinite(dist.std).all())


def _guarded_distribution(components: SDXLComponents, image: torch.Tensor, index: int):
    """The latent distribution of one image [1,3,H,W] in 0..1; a NaN/inf one is redone with the float32 VAE."""
    pixels = image * 2 - 1
    dist = _distribution(components.vae, pixels)
    if not _finite(dist):
        log.warning("VAE encode in %s gave NaN/inf (image %d); redoing it in float32", components.vae.dtype, index)
        dist = _distribution(_vae_fp32(components), pixels.float())
        if not _finite(dist):
            raise SdxlKitError("VAE encode gave NaN/inf even in float32: the input image or the VAE weights are broken")
    return dist


def _sample(components: SDXLComponents, dist, generator: torch.Generator | None) -> torch.Tensor:
    return dist.sample(generator=generator).float().cpu() * components.vae.config.scaling_factor


def encode(components: SDXLComponents, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Images [B,3,H,W] in 0..1 -> latents [B,4,H/8,W/8] scaled by the VAE's scaling factor (float32)."""
    with using(components, "vae"):
        return torch.cat([_sample(components, _guarded_distribution(components, images[i:i + 1], i), generator)
                          for i in range(images.shape[0])])


def encode_for_seeds(components: SDXLComponents, image: torch.Tensor, seeds: list[int]) -> torch.Tensor:
    """One image [1,3,H,W] encoded once, its latent distribution sampled with each seed's generator: the latents
    [len(seeds),4,H/8,W/8] that encoding it once per seed gives, for the price of one encode."""
    with using(components, "vae"):
        dist = _guarded_distribution(components, image, 0)
        return torch.cat([_sample(components, dist, torch.Generator("cpu").manual_seed(seed)) for seed in seeds])
