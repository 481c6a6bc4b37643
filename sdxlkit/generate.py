"""Generation: txt2img, img2img, inpaint and outpaint on loaded SDXL components.

Each mode is a function that prepares its denoising pass (sdxlkit.sampling.denoise, diffusers' SDXL pipelines
producing latents); `unet_parts` is the one list of the features acting on the UNet during a pass. Prompts are
encoded by sdxlkit.prompts (unlimited length, clip skip, weighting, textual inversions) and pixels go through the
guarded VAE. A mode's pass runs through `_denoise`: by the base model alone, or handed over to the refiner
(sdxlkit.refiner.handoff) when the task has one. The base images of several seeds share a pass (batching.py); each
is then followed by its post-passes, in `images_of`'s order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch
from PIL import Image

from . import masking, vae
from .accelerator import AcceleratorRequest
from .batching import batch_size, shares_a_pass
from .controlnet import CONTROLNETS, Control, ControlNetPart
from .embeddings import EMBEDDING_FILES, PromptEmbeddings
from .ipadapter import IPAdapterPart, IPAdapterRequest, adapter_uses
from .loading.components import SDXLComponents
from .loading.lru import file_key
from .loading.residency import bringing, extras_device, using
from .lora import apply_loras
from .photomaker.part import IdentityPart, start_merge_step
from .photomaker.prompt import IdentityEmbeds, without_trigger
from .photomaker.request import PhotoMakerRequest, identity_embeds, identity_key, photomaker_loras
from .prompts import encode_prompts
from .refiner import RefinerRequest
from .refiner.handoff import Refining, hand_off, load_refiner
from .sampling import DenoisePass, UNetPart, denoise
from .sampling.cuda_graph import CudaGraphPart
from .sampling.passes import OnStep
from .sampling.window import StepWindow

if TYPE_CHECKING:
    from .faces import FaceDetailer
    from .hires import HiresFix


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
    hires: HiresFix | None = None  # post-pass: generate smaller, upscale, refine (sdxlkit.hires)
    faces: FaceDetailer | None = None  # post-pass: repaint detected faces (sdxlkit.faces)
    photomaker: PhotoMakerRequest | None = None
    refiner: RefinerRequest | None = None
    embeddings: list[tuple[Path, float]] = field(default_factory=list)  # textual inversion files and weights
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


def _paste(base: torch.Tensor, patch: torch.Tensor, mask: Image.Image, box: tuple[int, int, int, int], radius: int,
           impact: bool = False) -> torch.Tensor:
    """`base` [1,3,H,W] with `patch` resized into `box`, blended where the feathered `mask` (base's size) is white:
    blurred over the whole image with PIL's radius, or (`impact`) the box's part as Impact Pack feathers it."""
    x0, y0, x1, y1 = box
    if patch.shape[-2:] != (y1 - y0, x1 - x0):
        patch = torch.nn.functional.interpolate(patch, size=(y1 - y0, x1 - x0), mode="bicubic", antialias=True).clamp(0, 1)
    if impact:
        alpha = masking.impact_feathered(_to_tensor(mask.crop(box).convert("RGB"))[:, :1], radius)
    else:
        alpha = _to_tensor(masking.feathered(mask, radius).crop(box).convert("RGB"))[:, :1]
    out = base.repeat(patch.shape[0], 1, 1, 1)
    out[..., y0:y1, x0:x1] = base[..., y0:y1, x0:x1] * (1 - alpha) + patch * alpha
    return out


def over_seed_image(gen: Generation, image: torch.Tensor) -> torch.Tensor:
    """`image` (the final size) where the inpaint mask is white, feathered as inpaint pastes, and the seed image
    elsewhere: what an inpaint keeps outside its mask, for an image that went through another pass (hires)."""
    size = (gen.width, gen.height)
    mask = _fit(gen.mask_image, size)
    return _paste(_to_tensor(_fit(gen.seed_image, size)), image, mask, (0, 0) + size, masking.INPAINT_FEATHER)


def _source_latents(components: SDXLComponents, image: Image.Image, seeds: list[int]) -> torch.Tensor:
    """The image encoded once, its latent distribution sampled with each seed: one source per image of a batch."""
    return vae.encode_for_seeds(components, _to_tensor(image), seeds).to(components.device, components.dtype)


def _fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return image if image.size == size else image.resize(size, Image.LANCZOS)


def _controls(components: SDXLComponents, gen: Generation, box: tuple[int, int, int, int] | None = None,
              pass_size: tuple[int, int] | None = None) -> list[Control]:
    """The ControlNets of `gen` with their guide images at the generation size, cropped like the region being
    repainted and resized to the pass's size (the generation size unless given)."""
    size = (gen.width, gen.height)
    controls = []
    for request in gen.controls:
        if request.weight == 0:
            continue  # weight 0 is no control at all
        model = CONTROLNETS.get(request.path, components)
        image = _fit(request.image.convert("RGB"), size)
        if box is not None and box != (0, 0) + size:
            image = image.crop(box)
        image = _fit(image, pass_size or size)
        controls.append(Control(model, _to_tensor(image), request.weight, request.mode, request.window))
    return controls


def unet_parts(components: SDXLComponents, gen: Generation, embeds, box: tuple[int, int, int, int] | None = None,
               pass_size: tuple[int, int] | None = None) -> list[UNetPart]:
    """Everything that acts on the UNet during a pass of `gen` with `embeds`, outermost first; `box` is the region
    being repainted (in the generation's pixels) and `pass_size` the pass's size when it is not the generation size.
    `gen.steps` is the pass's schedule (its num_inference_steps)."""
    parts: list[UNetPart] = []
    if isinstance(embeds, IdentityEmbeds):  # outermost: the parts inside see the prompt of the step
        parts.append(IdentityPart(embeds, start_merge_step(gen.photomaker.strength, gen.steps), guidance=gen.cfg > 1))
    if gen.accelerator:
        parts += gen.accelerator.parts()
    ip_uses = adapter_uses(gen.ip_adapters, components.unet, components.dtype, components.device,
                           extras_device(components), partial(bringing, components))
    if ip_uses:
        parts.append(IPAdapterPart(ip_uses, guidance=gen.cfg > 1))
    controls = _controls(components, gen, box, pass_size)
    if controls:
        parts.append(ControlNetPart(controls, guidance=gen.cfg > 1))
    if components.replays_graphs():
        parts.append(CudaGraphPart())  # innermost: the parts above only change its inputs
    return parts


def _pass(gen: Generation, kind: str, seeds: list[int], embeds, parts: list[UNetPart], **inputs) -> DenoisePass:
    return DenoisePass(kind=kind, width=gen.width, height=gen.height, steps=gen.steps, cfg=gen.cfg,
                       scheduler=gen.scheduler, seeds=seeds, embeds=embeds, parts=parts, **inputs)


def _denoise(components: SDXLComponents, p: DenoisePass, on_step, refining: Refining | None) -> torch.Tensor:
    """The latents of a mode's pass: the base model runs it, or hands it over to the refiner at the switch step."""
    return denoise(components, p, on_step) if refining is None else hand_off(components, refining, p, on_step)


def txt2img(components: SDXLComponents, gen: Generation, seeds: list[int], embeds, on_step,
            refining: Refining | None = None) -> torch.Tensor:
    p = _pass(gen, "txt2img", seeds, embeds, unet_parts(components, gen, embeds))
    return vae.decode(components, _denoise(components, p, on_step, refining))


def img2img(components: SDXLComponents, gen: Generation, seeds: list[int], embeds, on_step,
            refining: Refining | None = None) -> torch.Tensor:
    source = _source_latents(components, _fit(gen.seed_image, (gen.width, gen.height)), seeds)
    p = _pass(gen, "img2img", seeds, embeds, unet_parts(components, gen, embeds), image_latents=source,
              strength=gen.strength)
    return vae.decode(components, _denoise(components, p, on_step, refining))


def inpaint(components: SDXLComponents, gen: Generation, seeds: list[int], embeds, on_step,
            refining: Refining | None = None) -> torch.Tensor:
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
    p = _pass(gen, "inpaint", seeds, embeds, unet_parts(components, gen, embeds, box),
              image_latents=_source_latents(components, source, seeds), mask=source_mask, strength=gen.strength)
    latents = _denoise(components, p, on_step, refining)
    return _paste(_to_tensor(full), vae.decode(components, latents), mask, box, feather)


MODES = {"txt2img": txt2img, "img2img": img2img, "inpaint": inpaint, "outpaint": inpaint}


def prompt_embeds(components: SDXLComponents, gen: Generation, prompt: str, negative_prompt: str | None, cfg: float,
                  photomaker: PhotoMakerRequest | None = None):
    """The prompt embeddings of a pass at guidance `cfg` (no negative prompt without guidance), by `components`' text
    encoders (the refiner has bigG only) with the run's textual inversions; with PhotoMaker an IdentityEmbeds
    (text-only prompt + identity prompt). The refiner's pipeline config has force_zeros_for_empty_prompt false: its
    empty negative is encoded "".

    Like ComfyUI, which does not run an unchanged CLIPTextEncode again, a model keeps the embeddings of its last
    prompts: the same prompts, clip skip, weighting, textual inversions, LoRA set and PhotoMaker file and photos are
    not encoded twice (a seed sweep, or the face detailer's prompt for every image, brings no text encoder back onto
    the GPU)."""
    guidance = cfg > 1
    negative = negative_prompt if guidance else None
    key = (prompt, negative, gen.clip_skip, gen.weighting, guidance,
           tuple((file_key(path, "embedding"), weight) for path, weight in gen.embeddings),
           _lora_set(components), photomaker and identity_key(photomaker))
    return components.embeds_cache.get_or_make(
        key, lambda: _encoded(components, gen, prompt, negative, guidance, photomaker))


def _lora_set(components: SDXLComponents) -> tuple:
    """The LoRAs merged into the model now, as (file key, weight) pairs."""
    merged = components.lora_state.merged if components.lora_state is not None else ()
    return tuple((key, weight) for key, (_, weight) in merged)


def _encoded(components: SDXLComponents, gen: Generation, prompt: str, negative: str | None, guidance: bool,
             photomaker: PhotoMakerRequest | None):
    embeddings = PromptEmbeddings([(EMBEDDING_FILES.get(path), weight) for path, weight in gen.embeddings]) \
        if gen.embeddings else None
    with using(components, "text_encoder", "text_encoder_2"):
        if photomaker is not None:  # runnable: never with embeddings
            return identity_embeds(components, photomaker, components.tokenizers(), components.text_encoders(),
                                   prompt, negative, clip_skip=gen.clip_skip, weighting=gen.weighting,
                                   guidance=guidance)
        return encode_prompts(components.tokenizers(), components.text_encoders(), prompt, negative,
                              clip_skip=gen.clip_skip, weighting=gen.weighting, guidance=guidance,
                              zero_negative_when_empty=components.role != "refiner", embeddings=embeddings)


def images_of(components: SDXLComponents, gen: Generation, seeds: list[int], embeds, on_step,
              refining: Refining | None) -> Iterator[tuple[torch.Tensor, int]]:
    """The mode's base images of `seeds` in one pass (at the hires fix's first-pass size when there is one; handed
    over to the refiner when the task has one), then each image's post-passes in order; a post-pass the task does
    not ask for returns the image unchanged."""
    from .faces import detail_faces  # the post-pass modules build on this one
    from .hires import first_pass, hires_fix

    images = MODES[gen.mode](components, first_pass(gen), seeds, embeds, on_step, refining)
    for image, seed in zip(images.split(1), seeds):
        image = hires_fix(components, gen, image, seed, embeds, on_step)
        yield detail_faces(components, gen, image, seed, on_step), seed


def generate(components: SDXLComponents, gen: Generation, on_step: OnStep | None = None,
             batch: int | None = None) -> list[tuple[torch.Tensor, int]]:
    """All of `generate_each`'s images in a list."""
    return list(generate_each(components, gen, on_step, batch))


@torch.inference_mode()
def generate_each(components: SDXLComponents, gen: Generation, on_step: OnStep | None = None,
                  batch: int | None = None) -> Iterator[tuple[torch.Tensor, int]]:
    """Run `gen.count` images with seeds seed, seed+1, ...; yields each (image [1,3,H,W] float 0..1 on CPU, seed) pair
    as soon as it is done (`batch` base images per pass, by default as many as memory allows: batching.py), so a
    caller can write image 1 before image 2 starts.

    on_step(done, total) is called after every denoising step, counting a step of a batch once per image; whatever
    it raises (an interrupt) propagates."""
    apply_loras(components, gen.loras + photomaker_loras(gen.photomaker))
    embeds = prompt_embeds(components, gen, gen.prompt, gen.negative_prompt, gen.cfg, gen.photomaker)
    refining = None
    if gen.refiner is not None:
        refiner = load_refiner(components, gen.refiner)
        prompt = gen.prompt if gen.photomaker is None else without_trigger(gen.prompt)
        refining = Refining(refiner, prompt_embeds(refiner, gen, prompt, gen.negative_prompt, gen.cfg), gen.refiner)
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

        yield from images_of(components, gen, chunk, embeds, batch_step, refining)
