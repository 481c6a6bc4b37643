"""IP-Adapter as a UNet part: for the length of a pass, the cross-attentions of the blocks where an adapter has a
non-zero weight run IPAdapterAttnProcessor; every other block keeps its own processor (exactly the base output)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..sampling.unet import UNetPart
from .attention import ImagePrompt, IPAdapterAttnProcessor
from .files import IPAdapterModel

_STACK_ORDER = {"down_blocks": 0, "mid_block": 1, "up_blocks": 2}  # ComfyUI counts input, middle, output


def cross_attentions(unet) -> list[tuple[str, int, int]]:
    """(processor name, adapter number N, block t) of every cross-attention, in diffusers' processor order.
    N is the position among all attention processors (h94's numbering); t counts the transformer stacks as
    ComfyUI's transformer_index does (input blocks, middle, output blocks)."""
    names = list(unet.attn_processors)
    found = [(name, n) for n, name in enumerate(names) if name.endswith("attn2.processor")]
    stacks = list(dict.fromkeys(name.split(".transformer_blocks.")[0] for name, _ in found))
    stacks.sort(key=lambda s: _STACK_ORDER[s.split(".")[0]])  # stable: keeps each group's own order
    return [(name, n, stacks.index(name.split(".transformer_blocks.")[0])) for name, n in found]


@dataclass
class AdapterUse:
    """One ipAdapters[] entry ready to act: its model, its image tokens and its weight per block t."""

    model: IPAdapterModel
    cond: torch.Tensor  # [1, tokens, width]
    uncond: torch.Tensor
    weights: dict[int, float]
    scaling: str


class IPAdapterPart(UNetPart):
    def __init__(self, uses: list[AdapterUse], guidance: bool):
        self.uses = uses
        self.guidance = guidance
        self._originals: dict | None = None

    def processors(self, unet) -> dict[str, IPAdapterAttnProcessor]:
        out = {}
        for name, number, block in cross_attentions(unet):
            prompts = [ImagePrompt(u.model.to_k[str(number)], u.model.to_v[str(number)], u.cond, u.uncond,
                                   u.weights[block], u.scaling) for u in self.uses if block in u.weights]
            if prompts:
                out[name] = IPAdapterAttnProcessor(block, prompts, self.guidance)
        return out

    def attach(self, unet) -> None:
        self._originals = dict(unet.attn_processors)
        unet.set_attn_processor(self._originals | self.processors(unet))

    def detach(self, unet) -> None:
        if self._originals is not None:
            unet.set_attn_processor(self._originals)
            self._originals = None
