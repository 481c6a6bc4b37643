"""ControlNet as a UNet part: adds the residuals of one or more ControlNets, each with its own per-residual scales,
uncond handling and step window."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..sampling.unet import UNetCall, UNetPart
from ..sampling.window import StepWindow
from .scales import residual_scales, zeroes_uncond


@dataclass
class Control:
    model: torch.nn.Module  # diffusers ControlNetModel
    image: torch.Tensor  # [1, 3, H, W], 0..1, at the size being generated
    weight: float
    mode: str
    window: StepWindow


def scaled_residuals(control: Control, raw_down: list[torch.Tensor], raw_mid: torch.Tensor,
                     guidance: bool) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One ControlNet's residuals after its control mode: scaled, and with the unconditional rows zeroed in
    'controlnet' mode (the batch is [uncond, cond] under classifier-free guidance, as diffusers builds it)."""
    scales = residual_scales(control.mode, control.weight, len(raw_down) + 1)
    down = [r * s for r, s in zip(raw_down, scales)]
    mid = raw_mid * scales[-1]
    if guidance and zeroes_uncond(control.mode):
        half = raw_mid.shape[0] // 2
        keep = torch.cat([torch.zeros(half), torch.ones(raw_mid.shape[0] - half)]).to(raw_mid.device, raw_mid.dtype)
        keep = keep.view(-1, 1, 1, 1)
        down, mid = [r * keep for r in down], mid * keep
    return down, mid


class ControlNetPart(UNetPart):
    """Calls each ControlNet active at the current step and sums their residuals into the UNet call."""

    def __init__(self, controls: list[Control], guidance: bool):
        self.controls = controls
        self.guidance = guidance
        self.active_steps: list[list[int]] = [[] for _ in controls]  # step indices each control acted at

    def __call__(self, call: UNetCall, forward):
        down_sum = mid_sum = None
        sample = call.sample
        for position, control in enumerate(self.controls):
            if not control.window.active(call.step, call.total):
                continue
            self.active_steps[position].append(call.step)
            cond = control.image.to(sample.device, sample.dtype).expand(sample.shape[0], -1, -1, -1)
            raw_down, raw_mid = control.model(
                sample[:, :control.model.config.in_channels], call.timestep,
                encoder_hidden_states=call.encoder_hidden_states, controlnet_cond=cond, conditioning_scale=1.0,
                added_cond_kwargs=call.added_cond_kwargs, return_dict=False)
            down, mid = scaled_residuals(control, list(raw_down), raw_mid, self.guidance)
            down_sum = down if down_sum is None else [a + b for a, b in zip(down_sum, down)]
            mid_sum = mid if mid_sum is None else mid_sum + mid
        if down_sum is not None:
            call.kwargs.update(down_block_additional_residuals=down_sum, mid_block_additional_residual=mid_sum)
        return forward(call)
