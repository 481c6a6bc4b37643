"""DeepCache (Ma et al., arXiv 2312.00858) on diffusers' UNet2DConditionModel, as DeepCache's own SD helper
(`DeepCacheSDHelper`, uniform mode) defines it, scoped to one pass.

Branch b names a layer of the U: down block b // 3, layer b % 3 (layer = resnet/attention pair; a down block's
downsampler is the layer after its last resnet). On a cached step every module deeper than the branch returns the
output it gave at the last fully computed step, so only the shallow path runs: conv_in, the down layers above the
branch, the up layers from the branch's mirror outwards (fed by the cached deep features and today's skip
connections) and conv_out. Skipped, exactly as in the helper:
- down block i > block, or i == block with layer >= layer (the whole block when layer is 0);
- the middle block;
- up block i > block (up blocks and their layers numbered from the output side), or i == block with layer > layer.
Only the outermost skipped modules are stood in for (the helper patches all of them and keeps every output): the
result is the same, the memory is that of the features actually reused.

State lives in the part, which is made per pass: features never cross from one image, pass or run to another.
The first full step's outputs become the pass's feature buffers, and later full steps write into them in place, so
a CUDA graph of a cached step (compiled mode) reads the latest features where it found them when captured.
ControlNet residuals still reach the computed layers (the shallow skip connections, which are where they act on
the computed path); the deep ones would only feed cached modules.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator

import torch
from torch.utils._pytree import tree_leaves

from ..sampling.unet import StandIn, UNetCall, UNetPart
from .schedule import CacheSchedule

LAYERS_PER_BLOCK = 3  # DeepCache's branch numbering: 3 layers per block (SDXL: 2 resnets + the sampler)


def skipped_modules(unet: torch.nn.Module, branch: int) -> Iterator[tuple[torch.nn.Module, str]]:
    """The outermost modules a cached step skips for DeepCache branch `branch`, as (parent, child name) pairs."""
    block, layer = divmod(branch, LAYERS_PER_BLOCK)

    def children(container, keep) -> Iterator[tuple[torch.nn.Module, str]]:
        yield from ((container, str(j)) for j in range(len(container or ())) if keep(j))

    for i, down in enumerate(unet.down_blocks):
        if i > block or (i == block and layer == 0):
            yield unet.down_blocks, str(i)
        elif i == block:
            yield from children(down.resnets, lambda j: j >= layer)
            yield from children(getattr(down, "attentions", None), lambda j: j >= layer)
            if len(down.resnets) >= layer:
                yield from children(down.downsamplers, lambda j: True)
    yield unet, "mid_block"
    count = len(unet.up_blocks)
    for index, up in enumerate(unet.up_blocks):
        numbered = count - 1 - index
        if numbered > block:
            yield unet.up_blocks, str(index)
        elif numbered == block:
            last = len(up.resnets) - 1
            yield from children(up.resnets, lambda j: last - j > layer)
            yield from children(getattr(up, "attentions", None), lambda j: last - j > layer)


class Reused(StandIn):
    """Stands in for a skipped module during a pass: computes and keeps its output on full steps, hands the kept
    output back on cached steps. Standing in (rather than patching `forward`) leaves the module and any compiled
    code of it untouched."""

    def __init__(self, inner: torch.nn.Module, part: "DeepCachePart", key: int):
        super().__init__(inner)
        self.part = part
        self.key = key

    def forward(self, *args, **kwargs):
        features = self.part.features
        if self.part.reusing:
            return features[self.key]
        out = self.inner(*args, **kwargs)
        kept = features.setdefault(self.key, out)
        if kept is not out:
            for buffer, value in zip(tree_leaves(kept), tree_leaves(out)):
                buffer.copy_(value)
        return out


def branch_count(unet: torch.nn.Module) -> int:
    """Branch ids this UNet has (0 .. count - 1): 9 for SDXL's three down blocks."""
    return LAYERS_PER_BLOCK * len(unet.down_blocks)


class DeepCachePart(UNetPart):
    """Full UNet on refresh steps, the shallow path on the steps between (every `interval` steps a refresh, within
    the schedule's window and run limit). `full_steps` / `cached_steps` record the step indices of the pass."""

    def __init__(self, interval: int, branch: int, schedule: CacheSchedule):
        self.interval = interval
        self.branch = branch
        self.schedule = schedule
        self.full_steps: list[int] = []
        self.cached_steps: list[int] = []

    def attach(self, unet: torch.nn.Module) -> None:
        if self.branch >= branch_count(unet):
            raise ValueError(f"acceleratorOptions.deepCacheBranchId is {self.branch}; this UNet has branches "
                             f"0..{branch_count(unet) - 1}")
        self.features: dict[int, object] = {}
        self.in_a_row = 0
        self.reusing = False
        self.replaced: list[tuple[torch.nn.Module, str, torch.nn.Module]] = []
        for parent, name in skipped_modules(unet, self.branch):
            module = parent._modules[name]
            parent._modules[name] = Reused(module, self, len(self.replaced))
            self.replaced.append((parent, name, module))

    def detach(self, unet: torch.nn.Module) -> None:
        for parent, name, module in reversed(self.replaced):
            parent._modules[name] = module
        self.replaced, self.features = [], {}

    def __call__(self, call: UNetCall, forward):
        self.reusing = bool(self.features) and self.schedule.may_cache(call.step, call.total, self.in_a_row,
                                                                       limit=self.interval - 1)
        (self.cached_steps if self.reusing else self.full_steps).append(call.step)
        self.in_a_row = self.in_a_row + 1 if self.reusing else 0
        if self.reusing:  # the stand-ins, not the inputs, make this forward the shallow one
            call = replace(call, variant=(*call.variant, "DeepCache: deep features reused"))
        try:
            return forward(call)
        finally:
            self.reusing = False
