"""IP-Adapter files from models/ipadapter (h94's `ip-adapter*_sdxl*.safetensors` / `.bin`, as cubiq's README names
them): the architecture is read off the keys, errors name the file.

A file holds `image_proj.*` (the projection, see projection.py) and `ip_adapter.N.to_k_ip.weight` /
`ip_adapter.N.to_v_ip.weight`, where N is a cross-attention's position among all the UNet's attention processors
in diffusers' order (down blocks, up blocks, middle: cubiq's input, output, middle; 1, 3, ..., 139 on SDXL).
`.bin` files (a pickled dict of the two groups) are read with torch.load(weights_only=True) only, which refuses pickles that carry code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelLoadError
from ..loading.state_dicts import read_state_dict
from .projection import build_projection


def read_weights(path: Path, what: str) -> tuple[dict, dict]:
    """(flat state dict, safetensors metadata) of a .safetensors file, or of a .bin/.pt file loaded as weights only."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return read_state_dict(path)
    if path.suffix not in (".bin", ".pt", ".pth"):
        raise ModelLoadError(f"{path.name}: unknown {what} file type {path.suffix!r}; expected .safetensors or .bin")
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # an unpickling error (code in the pickle), a truncated zip, ...
        reason = str(exc).strip().splitlines()[0][:200]
        raise ModelLoadError(f"{path.name}: cannot be read as a weights-only torch file ({reason}); a pickle that "
                             "runs code is refused, use the .safetensors file") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path.name}: not a {what} (a {type(data).__name__}, not a dict of weights)")
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat |= {f"{key}.{k}": v for k, v in value.items()}
        else:
            flat[key] = value
    return flat, {}


@dataclass
class IPAdapterModel:
    """A loaded IP-Adapter: its projection, and the image key/value projections by cross-attention number N."""

    name: str
    projection: nn.Module
    plus: bool  # resampler over penultimate CLIP states (Plus / Plus Face), else image embeds (base)
    to_k: nn.ModuleDict  # str(N) -> Linear
    to_v: nn.ModuleDict

    @property
    def clip_width(self) -> int:
        """Width of the CLIP output the projection takes (the encoder's projection or hidden width)."""
        first = self.projection.proj_in if self.plus else self.projection.proj
        return first.weight.shape[1]


def _group(sd: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def _refuse_unsupported(path: Path, proj: dict, layers: dict) -> None:
    if "0.to_q_lora.down.weight" in layers or ("proj.2.weight" in proj and "proj.3.weight" not in proj):
        raise ModelLoadError(f"{path.name}: a FaceID IP-Adapter; these need InsightFace face embeddings, which "
                             "sdxlkit does not compute. Use ip-adapter(-plus/-plus-face)_sdxl(_vit-h)")
    if "proj.3.weight" in proj or "perceiver_resampler.proj_in.weight" in proj:
        raise ModelLoadError(f"{path.name}: a full-face or Kolors IP-Adapter (not for SDXL); use an SDXL IP-Adapter")


def load_ip_adapter(path: Path, cross_attention_dim: int, numbers: list[int], dtype, device) -> IPAdapterModel:
    """`numbers`: the UNet's cross-attentions N (70 on SDXL: 1, 3, ..., 139), one k/v pair each."""
    path = Path(path)
    sd, _ = read_weights(path, "IP-Adapter")
    proj, layers = _group(sd, "image_proj."), _group(sd, "ip_adapter.")
    if not proj or not layers:
        raise ModelLoadError(f"{path.name}: not an IP-Adapter (no image_proj.* / ip_adapter.* weights; found e.g. "
                             f"{', '.join(sorted(sd)[:3])})")
    _refuse_unsupported(path, proj, layers)
    width = layers["1.to_k_ip.weight"].shape[1] if "1.to_k_ip.weight" in layers else None
    if width != cross_attention_dim:
        raise ModelLoadError(f"{path.name}: an IP-Adapter for another model (text width {width}; this SDXL model has "
                             f"{cross_attention_dim}); SD1.5 adapters do not work with SDXL")
    numbers = [str(n) for n in numbers]
    expected = {f"{n}.to_{kv}_ip.weight" for n in numbers for kv in "kv"}
    if set(layers) != expected:
        odd = sorted(set(layers) ^ expected)
        raise ModelLoadError(f"{path.name}: its {len(layers) // 2} attention layers do not match this UNet's "
                             f"{len(numbers)} cross-attentions (e.g. {', '.join(odd[:3])})")
    try:
        projection, plus = build_projection(proj)
    except (KeyError, RuntimeError, IndexError) as exc:
        raise ModelLoadError(f"{path.name}: image_proj weights are neither an IP-Adapter projection nor a resampler "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]})") from None

    def linears(kind: str) -> nn.ModuleDict:
        out = nn.ModuleDict()
        for n in numbers:
            weight = layers[f"{n}.to_{kind}_ip.weight"]
            linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False, device="meta")
            linear.weight = nn.Parameter(weight, requires_grad=False)
            out[n] = linear
        return out

    model = IPAdapterModel(path.name, projection, plus, linears("k"), linears("v"))
    for module in (model.projection, model.to_k, model.to_v):
        module.to(device=device, dtype=dtype)
    return model
