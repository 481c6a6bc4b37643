"""The image projections of IP-Adapter files (h94's IP-Adapter, as cubiq's image_proj_models.py builds them), with
their sizes read off the weights.

- base: `ImageProjection` (image_proj.proj + image_proj.norm): the CLIP image embedding -> 4 tokens.
- Plus / Plus Face: `Resampler` (image_proj.latents, proj_in, layers.*, proj_out, norm_out): a perceiver over the
  CLIP vision model's penultimate hidden states -> 16 tokens.
"""

from __future__ import annotations

import math

import torch
from torch import nn

DIM_HEAD = 64  # the resampler's head width in every IP-Adapter Plus model (h94 and cubiq hard-code it)


class ImageProjection(nn.Module):
    def __init__(self, clip_dim: int, width: int, tokens: int):
        super().__init__()
        self.tokens, self.width = tokens, width
        self.proj = nn.Linear(clip_dim, tokens * width)
        self.norm = nn.LayerNorm(width)

    def forward(self, image_embeds: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(image_embeds).reshape(-1, self.tokens, self.width))


def _feed_forward(dim: int, inner: int) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, inner, bias=False), nn.GELU(), nn.Linear(inner, dim, bias=False))


class PerceiverAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        inner = DIM_HEAD * heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, -1).transpose(1, 2)

    def forward(self, x: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        x, latents = self.norm1(x), self.norm2(latents)
        b, n, _ = latents.shape
        q = self._heads(self.to_q(latents))
        k, v = (self._heads(t) for t in self.to_kv(torch.cat((x, latents), dim=-2)).chunk(2, dim=-1))
        scale = 1 / math.sqrt(math.sqrt(DIM_HEAD))
        weight = torch.softmax(((q * scale) @ (k * scale).transpose(-2, -1)).float(), dim=-1).to(q.dtype)
        return self.to_out((weight @ v).permute(0, 2, 1, 3).reshape(b, n, -1))


class Resampler(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, tokens: int, clip_dim: int, width: int, ff_inner: int):
        super().__init__()
        self.latents = nn.Parameter(torch.zeros(1, tokens, dim))
        self.proj_in = nn.Linear(clip_dim, dim)
        self.proj_out = nn.Linear(dim, width)
        self.norm_out = nn.LayerNorm(width)
        self.layers = nn.ModuleList(nn.ModuleList([PerceiverAttention(dim, heads), _feed_forward(dim, ff_inner)])
                                    for _ in range(depth))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        latents = self.latents.repeat(hidden_states.shape[0], 1, 1)
        x = self.proj_in(hidden_states)
        for attention, feed_forward in self.layers:
            latents = attention(x, latents) + latents
            latents = feed_forward(latents) + latents
        return self.norm_out(self.proj_out(latents))


def build_projection(sd: dict[str, torch.Tensor]) -> tuple[nn.Module, bool]:
    """(projection with `sd` loaded, plus?) for the `image_proj.` weights of an IP-Adapter (prefix removed).
    Raises KeyError / RuntimeError when the weights describe neither architecture."""
    if "latents" in sd:
        dim = sd["latents"].shape[-1]
        depth = len({k.split(".")[1] for k in sd if k.startswith("layers.")})
        model: nn.Module = Resampler(
            dim=dim, depth=depth, heads=sd["layers.0.0.to_q.weight"].shape[0] // DIM_HEAD,
            tokens=sd["latents"].shape[1], clip_dim=sd["proj_in.weight"].shape[1],
            width=sd["proj_out.weight"].shape[0], ff_inner=sd["layers.0.1.1.weight"].shape[0])
        plus = True
    else:
        width = sd["norm.weight"].shape[0]
        model = ImageProjection(clip_dim=sd["proj.weight"].shape[1], width=width,
                                tokens=sd["proj.weight"].shape[0] // width)
        plus = False
    model.load_state_dict(sd, strict=True)
    return model.eval().requires_grad_(False), plus
