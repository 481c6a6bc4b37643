"""First-block cache for the SDXL UNet, as ParaAttention's First Block Cache and Comfy-WaveSpeed's UNet patch define
it, scoped to one pass.

Every step runs the first block (conv_in, then the first resnet of the first down block: ComfyUI's input blocks 0
and 1) and takes its residual r = h1 - h0. When mean|r - r_ref| / mean|r_ref| < threshold, where r_ref is the
residual of the last fully computed step, the rest of the UNet is not run: h = h1 + R_ref, R_ref being what the
rest added to h1 at that step (h before the output norm minus h1), and the output layers (norm, SiLU, conv_out) run
on h. Otherwise the whole UNet runs and r_ref, R_ref are updated. A served step leaves r_ref alone, so drift adds
up until a full step is due. Inner parts (ControlNet, IP-Adapter) are not called on a served step.
"""

from __future__ import annotations

import torch

from ..sampling.unet import UNetCall, UNetPart
from .output import unet_output
from .schedule import CacheSchedule


def relative_change(reference: torch.Tensor, current: torch.Tensor) -> float:
    """mean|reference - current| / mean|reference|, WaveSpeed's `are_two_tensors_similar` measure."""
    return ((reference - current).abs().mean() / reference.abs().mean()).item()


def time_embedding(unet: torch.nn.Module, call: UNetCall) -> torch.Tensor:
    """The embedding UNet2DConditionModel.forward gives its blocks (timestep + SDXL's text/time conditioning)."""
    emb = unet.time_embedding(unet.get_time_embed(sample=call.sample, timestep=call.timestep), None)
    aug = unet.get_aug_embed(emb=emb, encoder_hidden_states=call.encoder_hidden_states,
                             added_cond_kwargs=call.added_cond_kwargs)
    emb = emb if aug is None else emb + aug
    return emb if unet.time_embed_act is None else unet.time_embed_act(emb)


class FirstBlockCachePart(UNetPart):
    """`full_steps` / `cached_steps` record the step indices of the pass; `changes` the relative change measured at
    each step that had a reference."""

    def __init__(self, threshold: float, schedule: CacheSchedule):
        self.threshold = threshold
        self.schedule = schedule
        self.full_steps: list[int] = []
        self.cached_steps: list[int] = []
        self.changes: list[float] = []

    def attach(self, unet: torch.nn.Module) -> None:
        first = unet.down_blocks[0]
        if getattr(first, "attentions", None):
            raise ValueError("acceleratorOptions.teaCache: the first-block cache needs a UNet whose first down block "
                             "has no attention (SDXL's layout)")
        self.unet = unet
        self.first_residual = self.rest_residual = None
        self.in_a_row = 0
        self._final = None
        self.hook = unet.conv_norm_out.register_forward_pre_hook(self._keep_final)

    def _keep_final(self, module, args):
        self._final = args[0]

    def detach(self, unet: torch.nn.Module) -> None:
        self.hook.remove()
        self.unet = self.first_residual = self.rest_residual = self._final = None

    def __call__(self, call: UNetCall, forward):
        unet = self.unet
        emb = time_embedding(unet, call)
        h0 = unet.conv_in(call.sample)
        h1 = unet.down_blocks[0].resnets[0](h0, emb)
        residual = h1 - h0
        if self.first_residual is not None and self.schedule.may_cache(call.step, call.total, self.in_a_row):
            change = relative_change(self.first_residual, residual)
            self.changes.append(change)
            if change < self.threshold:
                self.cached_steps.append(call.step)
                self.in_a_row += 1
                h = unet.conv_act(unet.conv_norm_out(h1 + self.rest_residual))
                return unet_output(call, unet.conv_out(h))
        self.full_steps.append(call.step)
        self.in_a_row = 0
        out = forward(call)
        self.first_residual, self.rest_residual = residual, self._final - h1
        self._final = None
        return out
