"""Where the model's parts live while a generation runs.

- "auto" (default): every part stays on the compute device; when a denoising pass needs more free GPU memory than
  is left, the text encoders and the VAE (idle during the pass) move to the CPU first and come back when used.
- "lowvram": every part lives on the CPU and is on the GPU only while it runs (text encoders for the prompt, the
  UNet for a pass, the VAE for encoding and decoding), as diffusers' model CPU offload does: the GPU holds one part
  at a time, at the cost of copying each part in for every use.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

MEMORY_MODES = ("auto", "lowvram")
# working memory of one image in a pass (a CFG pair of UNet activations, then its VAE decode), measured at about
# 1.5 GiB at 1024x1024 in bf16; float32 doubles it
WORKING_BYTES_PER_PIXEL = 1.5 * 2**30 / (1024 * 1024)


def working_bytes(width: int, height: int, element_size: int, images: int = 1) -> float:
    return WORKING_BYTES_PER_PIXEL * width * height * element_size / 2 * images
IDLE_DURING_A_PASS = ("text_encoder", "text_encoder_2", "vae")


def _device_of(module) -> str:
    return str(next(module.parameters()).device)


def _same_device(a: str, b: str) -> bool:
    return a == b or (a.startswith("cuda") and b == "cuda") or (b.startswith("cuda") and a == "cuda")


@contextmanager
def using(components, *names: str) -> Iterator[None]:
    """The parts `names` on the compute device for the block; under lowvram they go back to the CPU after it."""
    import torch

    modules = [m for m in (getattr(components, name) for name in names) if m is not None]  # the refiner has no CLIP-L
    for module in modules:
        if not _same_device(_device_of(module), str(components.device)):
            module.to(components.device)
    try:
        yield
    finally:
        if components.memory == "lowvram":
            for module in modules:
                module.to("cpu")
            torch.cuda.empty_cache()


def make_room(components, need: float) -> None:
    """Before a pass needing about `need` bytes of working memory: move the idle parts off a GPU short of it."""
    import torch

    device = str(components.device)
    if not device.startswith("cuda") or components.memory == "lowvram":
        return
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    if free >= need:
        return
    for name in IDLE_DURING_A_PASS:
        module = getattr(components, name)
        if module is not None and _device_of(module) != "cpu":
            module.to("cpu")
    torch.cuda.empty_cache()
