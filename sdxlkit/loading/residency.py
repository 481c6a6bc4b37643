"""Where the model's parts live while a generation runs on a GPU (on the CPU everything simply stays there).

- "auto" (default): the UNet and the VAE stay on the GPU. The text encoders, which run once per prompt, are parked
  in pinned CPU memory and brought in while they encode: SDXL's 1.5 GiB of CLIP is not held through the denoising
  and the decode. When a pass needs more free GPU memory than is left, the VAE is parked too until it decodes.
- "lowvram": the UNet and any ControlNet are streamed layer by layer (streaming.py); the text encoders, the VAE
  and the image encoders a run loads beside them (IP-Adapter's CLIP vision, PhotoMaker's ID encoder) are parked
  between uses, so the GPU holds one part's working set at a time (the VAE decode's, at large sizes).
Parked parts come back as one copy from pinned memory, and leaving costs nothing (parking.py).
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from typing import Iterator

from .parking import ParkedPart
from .streaming import settle, stream_weights

MEMORY_MODES = ("auto", "lowvram")
PARKED_AFTER_USE = {"auto": ("text_encoder", "text_encoder_2"), "lowvram": ("text_encoder", "text_encoder_2", "vae")}
STREAMED = {"auto": (), "lowvram": ("unet",)}
PARKABLE = ("text_encoder", "text_encoder_2", "vae")
# working memory of one image in a pass (a CFG pair of UNet activations, then its VAE decode), measured at about
# 1.5 GiB at 1024x1024 in bf16; float32 doubles it
WORKING_BYTES_PER_PIXEL = 1.5 * 2**30 / (1024 * 1024)


def working_bytes(width: int, height: int, element_size: int, images: int = 1) -> float:
    return WORKING_BYTES_PER_PIXEL * width * height * element_size / 2 * images


class Residency:
    """The parked parts of one loaded model and when they leave the GPU."""

    def __init__(self, device: str, memory: str, managed: bool = False):
        self.device, self.memory, self.managed = device, memory, managed
        self.parts: dict[str, ParkedPart] = {}
        self.extras: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # module -> ParkedPart

    @property
    def parks_extras(self) -> bool:
        """Whether the encoders a run loads beside the model (IP-Adapter's CLIP vision, PhotoMaker's ID encoder)
        live on the CPU and come in only while they encode."""
        return self.managed and self.memory == "lowvram"

    @property
    def streams(self) -> bool:
        """Whether the models a pass runs (the UNet, ControlNets) are streamed in layer by layer."""
        return self.managed and "unet" in STREAMED[self.memory]

    def onload(self, names) -> None:
        for name in names:
            if name in self.parts and self.parts[name].device is None:
                self.parts[name].onload(self.device)

    def park(self, names) -> None:
        for name in names:
            if name in self.parts and self.parts[name].device is not None:
                self.parts[name].park()


def place_parts(modules: dict, device: str, memory: str) -> Residency:
    """At load: every part where the memory mode (one of MEMORY_MODES) keeps it; on the CPU all simply stay there."""
    if str(device) == "cpu":
        for module in modules.values():
            module.to(device)
        return Residency(device, memory)
    return managed_residency(modules, device, memory)


def managed_residency(modules: dict, device: str, memory: str) -> Residency:
    """The mode's arrangement on `device`: streamed parts behind their hooks, parkable parts parked (the ones the
    mode keeps in brought in at once), the rest moved in."""
    residency = Residency(device, memory, managed=True)
    for name, module in modules.items():
        if name in STREAMED[memory]:
            stream_weights(module, device)
        elif name in PARKABLE:
            residency.parts[name] = ParkedPart(module)
        else:
            module.to(device)
    residency.onload(n for n in PARKABLE if n not in PARKED_AFTER_USE[memory])
    return residency


def extras_device(components) -> str:
    """Where an encoder loaded beside the model is loaded: the CPU when the memory mode parks it (see `bringing`)."""
    return "cpu" if components.residency.parks_extras else components.device


@contextmanager
def bringing(components, module) -> Iterator[None]:
    """An encoder loaded with `extras_device` on the compute device for the block, parked again after it."""
    residency: Residency = components.residency
    if not residency.parks_extras:
        yield
        return
    part = residency.extras.get(module)
    if part is None:
        part = residency.extras[module] = ParkedPart(module)
    part.onload(residency.device)
    try:
        yield
    finally:
        part.park()


@contextmanager
def using(components, *names: str) -> Iterator[None]:
    """The parts `names` on the compute device for the block; those the mode parks after use leave after it, and a
    streamed one has every layer back in CPU memory (streaming.settle)."""
    residency: Residency = components.residency
    residency.onload(names)
    try:
        yield
    finally:
        residency.park(n for n in names if n in PARKED_AFTER_USE[residency.memory])
        if residency.streams:
            for name in names:
                if name in STREAMED[residency.memory]:
                    settle(getattr(components, name))


def make_room(components, need: float) -> None:
    """Before a pass needing about `need` bytes of working memory: park the idle parts off a GPU short of it."""
    import torch

    residency: Residency = components.residency
    if not residency.parts or not str(residency.device).startswith("cuda"):
        return
    free, _ = torch.cuda.mem_get_info(torch.device(residency.device))
    if free < need:
        residency.park(PARKABLE)
        torch.cuda.empty_cache()
