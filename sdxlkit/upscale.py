"""Image upscaler models (ESRGAN, RealESRGAN, ...) from models/upscale_models, loaded with spandrel and run in tiles.

Like ComfyUI's ImageUpscaleWithModel: tiles of 512 px with 32 px overlap, blended where they overlap; when a tile
runs out of memory the whole image is redone with tiles half the size, down to 128 px.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from .errors import ModelLoadError, SdxlKitError, out_of_memory
from .loading.lru import FileModels
from .loading.state_dicts import read_state_dict

log = logging.getLogger(__name__)

TILE = 512
OVERLAP = 32
MIN_TILE = 128


def spandrel():
    try:
        import spandrel
    except Exception as exc:  # ImportError, or a broken install (torchvision mismatch) raising something else
        raise SdxlKitError(f"upscaler models need the spandrel package ({exc}); install it with "
                           "`pip install spandrel==0.4.2` into the Python that runs sdxlkit") from None
    return spandrel


def load_upscaler(path: Path, device: str | torch.device = "cpu"):
    """A spandrel ModelDescriptor for an image-to-image upscaler file (.safetensors, or a weights-only .pth)."""
    spandrel_module = spandrel()
    state_dict, _ = read_state_dict(Path(path), allow_pickle=True)  # pickles are read with weights_only=True
    try:
        model = spandrel_module.ModelLoader().load_from_state_dict(spandrel_module.canonicalize_state_dict(state_dict))
    except Exception as exc:
        raise ModelLoadError(f"{Path(path).name}: not an upscaler model spandrel knows ({exc})") from None
    if not isinstance(model, spandrel_module.ImageModelDescriptor):
        raise ModelLoadError(f"{Path(path).name}: a {model.architecture.name} model, not an image upscaler")
    return model.to(device).eval()


UPSCALERS = FileModels("upscaler model", load_upscaler)


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    return starts + [size - tile]


def _ramp(length: int, overlap: int, start: bool, end: bool) -> torch.Tensor:
    """Blend weights along one side of a tile: linear over the overlap where a neighbour exists, else 1."""
    w = torch.ones(length)
    ramp = torch.arange(1, overlap + 1, dtype=torch.float32) / (overlap + 1)
    if start and overlap:
        w[:overlap] = ramp
    if end and overlap:
        w[length - overlap:] = ramp.flip(0)
    return w


def _tiled(model, image: torch.Tensor, tile: int, overlap: int) -> torch.Tensor:
    scale = model.scale
    _, _, height, width = image.shape
    out = torch.zeros(1, 3, height * scale, width * scale)
    weight = torch.zeros(1, 1, height * scale, width * scale)
    ys, xs = _starts(height, tile, overlap), _starts(width, tile, overlap)
    for y in ys:
        for x in xs:
            patch = image[..., y:y + tile, x:x + tile]
            result = model(patch.to(model.device, model.dtype)).float().cpu()
            h, w = result.shape[-2:]
            wy = _ramp(h, overlap * scale, y > 0, y + tile < height)
            wx = _ramp(w, overlap * scale, x > 0, x + tile < width)
            mask = (wy[:, None] * wx[None, :])[None, None]
            out[..., y * scale:y * scale + h, x * scale:x * scale + w] += result * mask
            weight[..., y * scale:y * scale + h, x * scale:x * scale + w] += mask
    return out / weight


@torch.inference_mode()
def upscale(model, image: torch.Tensor, tile: int = TILE, overlap: int = OVERLAP) -> torch.Tensor:
    """image [1,3,H,W] in 0..1 -> [1,3,H*scale,W*scale] in 0..1 on the CPU, tile by tile."""
    while True:
        try:
            return _tiled(model, image, tile, min(overlap, tile // 4)).clamp(0, 1)
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not out_of_memory(exc) or tile // 2 < MIN_TILE:
                raise
            tile //= 2
            log.warning("upscaler ran out of memory; retrying with %d px tiles", tile)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
