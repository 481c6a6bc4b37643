"""Generation: txt2img, img2img, inpaint and outpaint on loaded SDXL components.

Each mode is a function that prepares its denoising pass (sdxlkit.sampling.denoise, diffusers' SDXL pipelines
producing latents); `unet_parts` is the one list of the features acting on the UNet during a pass. Prompts are
encoded by sdxlkit.prompts (unlimited length, clip skip, weighting) and pixels go through the guarded VAE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from . import masking, vae
from .batching import batch_size, shares_a_pass
from .accelerator import AcceleratorRequest
from .controlnet import CONTROLNETS, Control, ControlNetPart
from .ipadapter import IPAdapterPart, IPAdapterRequest, adapter_uses
from .loading.components import SDXLComponents
from .loading.residency import using
from .lora import apply_loras
from .prompts import encode_prompts
from .sampling import DenoisePass, UNetPart, denoise
from .sampling.passes import OnStep
from .sampling.window import StepWindow


@dataclass
class ControlRequest:
    """One controlNet[] entry, its model resolved to a file and its guide image decoded."""

    path: Path
    image: Image.Image
    weight: float
    mode: str
    window: StepWindow


@dataclass
class Generation:
    """Everything one run needs, already validated and decoded (images are PIL)."""

    prompt: str
    negative_prompt: str | None
    width: int
    height: int
    steps: int
    cfg: float
    scheduler: str
    seed: int
    count: int = 1
    clip_skip: int = 0
    weighting: str | None = None
    strength: float = 0.8
    seed_image: Image.Image | None = None
    mask_image: Image.Image | None = None
    mask_margin: int | None = None
    outpaint: dict | None = None
    outpaint_blur: int = 0
    loras: list[tuple[Path, float]] = field(default_factory=list)
    controls: list[ControlRequest] = field(default_factory=list)
    ip_adapters: list[IPAdapterRequest] = field(default_factory=list)
    accelerator: AcceleratorRequest | None = None

    @property
    def mode(self) -> str:
        if self.outpaint:
            return "outpaint"
        if self.mask_image is not None:
            return "inpaint"
        return "img2img" if self.seed_image is not None else "txt2img"


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    arrays = (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    return [Image.fromarray(a) for a in arrays]


def _paste(base: torch.Tensor, patch: torch.Tensor, mask: Image.Image, box: tuple[int, int, int, int], radius: int) -> torch.Tensor:
    """`base` [1,3,H,W] with `patch` resized into `box`, blended where the feathered `mask` (base's size) is white."""
    x0, y0, x1, y1 = box
    if patch.shape[-2:] != (y1 - y0, x1 - x0):
        patch = torch.nn.functional.interpolate(patch, size=(y1 - y0, x1 - x0), mode="bicubic", antialias=True).clamp(0, 1)
    alpha = _to_tensor(masking.feathered(mask, radius).crop(box).convert("RGB"))[:, :1]
    out = base.repeat(patch.shape[0], 1, 1, 1)
    out[..., y0:y1, x0:x1] = base[..., y0:y1, x0:x1] * (1 - alpha) + patch * alpha
    return out


def _source_latents(components: SDXLComponents, image: Image.Image, seeds: list[int]) -> torch.Tensor:
    """The image encoded once per seed: each image of a batch samples the VAE's latent distribution with its own."""
    pixels = _to_tensor(image)
    latents = [vae.encode(components, pixels, torch.Generator("cpu").manual_seed(seed)) for seed in seeds]
    return torch.cat(latents).to(components.device, components.dtype)


def _fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return image if image.size == size else image.resize(size, Image.LANCZOS)


def _controls(components: SDXLComponents, gen: Generation, box: tuple[int, int, int, int] | None = None) -> list[Control]:
    """The ControlNets of `gen` with their guide images at the generation size (cropped like the inpaint region)."""
    size = (gen.width, gen.height)
    controls = []
    for request in gen.controls:
        if request.weight == 0:
            continue  # weight 0 is no control at all
        model = CONTROLNETS.get(request.path, components.unet.config, components.dtype, components.device)
        image = _fit(request.image.convert("RGB"), size)
        if box is not None and box != (0, 0) + size:
            image = _fit(image.crop(box), size)
        controls.append(Control(model, _to_tensor(image), request.weight, request.mode, request.window))
    return controls


def unet_parts(components: SDXLComponents, gen: Generation, box: tuple[int, int, int, int] | None = None) -> list[UNetPart]:
    """Everything that acts on the UNet during a pass of `gen`, outermost first; `box` is the region being repainted."""
    parts: list[UNetPart] = gen.accelerator.parts() if gen.accelerator else []
    ip_uses = adapter_uses(gen.ip_adapters, components.unet, components.dtype, components.device)
    if ip_uses:
        parts.append(IPAdapterPart(ip_uses, guidance=gen.cfg > 1))
    controls = _controls(components, gen, box)
    if controls:
        parts.append(ControlNetPart(controls, guidance=gen.cfg > 1))
    return parts


def _pass(gen: Generation, kind: str, seeds: list[int], embeds, parts: list[UNetPart], **inputs) -> DenoisePass:
    return DenoisePass(kind=kind, width=gen.width, height=gen.height, steps=gen.steps, cfg=gen.cfg,
                       scheduler=gen.scheduler, seeds=seeds, embeds=embeds, parts=parts, **inputs)


def txt2img(components: SDXLComponents, gen: Generation, seeds: list[int], embeds, on_step) -> torch.Tensor:
    latents = denoise(components, _pass(gen, "txt2img", seeds, embeds, unet_parts(components, gen)), on_step)
    return vae.decode(components, latents)


def img2img(components: SDXLComponents, gen: Generation, seeds: list[int], embeds, on_step) -> torch.Tensor:
    source = _source_latents(components, _fit(gen.seed_image, (gen.width, gen.height)), seeds)
    p = _pass(gen, "img2img", seeds, embeds, unet_parts(components, gen), image_latents=source, strength=gen.strength)
    return vae.decode(components, denoise(components, p, on_step))


def inpaint(components: SDXLComponents, gen: Generation, seeds: list[int], embeds, on_step) -> torch.Tensor:
    """Inpaint and outpaint: repaint the mask's region (or the new border) and paste it back feathered."""
    size = (gen.width, gen.height)
    if gen.mode == "outpaint":
        o = gen.outpaint
        full, mask = masking.outpaint_canvas(gen.seed_image, o.get("top", 0), o.get("right", 0), o.get("bottom", 0), o.get("left", 0))
        feather, box = gen.outpaint_blur, (0, 0) + size
    else:
        full, mask = _fit(gen.seed_image, size), _fit(gen.mask_image, size)
        feather = masking.INPAINT_FEATHER
        box = (0, 0) + size if gen.mask_margin is None else masking.crop_region(mask, gen.mask_margin, gen.width / gen.height)
    source, source_mask = _fit(full.crop(box), size), _fit(mask.crop(box), size)
    p = _pass(gen, "inpaint", seeds, embeds, unet_parts(components, gen, box),
              image_latents=_source_latents(components, source, seeds), mask=source_mask, strength=gen.strength)
    return _paste(_to_tensor(full), vae.decode(components, denoise(components, p, on_step)), mask, box, feather)


MODES = {"txt2img": txt2img, "img2img": img2img, "inpaint": inpaint, "outpaint": inpaint}


def generate(components: SDXLComponents, gen: Generation, on_step: OnStep | None = None,
             batch: int | None = None) -> list[tuple[torch.Tensor, int]]:
    """All of `generate_each`'s images in a list."""
    return list(generate_each(components, gen, on_step, batch))


@torch.inference_mode()
def generate_each(components: SDXLComponents, gen: Generation, on_step: OnStep | None = None,
                  batch: int | None = None) -> Iterator[tuple[torch.Tensor, int]]:
    """Run `gen.count` images with seeds seed, seed+1, ...; yields each (image [1,3,H,W] float 0..1 on CPU, seed) pair
    as soon as its batch is done (`batch` images per pass, by default as many as memory allows: batching.py), so a
    caller can write image 1 before image 2 starts.

    on_step(done, total) is called after every denoising step, counting a step of a batch once per image; whatever
    it raises (an interrupt) propagates."""
    apply_loras(components, gen.loras)
    guidance = gen.cfg > 1
    with using(components, "text_encoder", "text_encoder_2"):
        embeds = encode_prompts((components.tokenizer, components.tokenizer_2),
                                (components.text_encoder, components.text_encoder_2),
                                gen.prompt, gen.negative_prompt if guidance else None,
                                clip_skip=gen.clip_skip, weighting=gen.weighting, guidance=guidance)
    size = batch_size(components, gen) if batch is None else batch
    if size > 1 and not shares_a_pass(gen):
        raise ValueError(f"the images of this generation cannot share a pass (scheduler {gen.scheduler!r} or the "
                         "first-block cache): batch must be 1")
    seeds = [gen.seed + index for index in range(gen.count)]
    for first in range(0, gen.count, size):
        chunk = seeds[first:first + size]

        def batch_step(done: int, total: int, first=first, chunk=chunk):
            if on_step is not None:
                on_step(first * total + done * len(chunk), gen.count * total)

        images = MODES[gen.mode](components, gen, chunk, embeds, batch_step)
        yield from zip(images.split(1), chunk)
