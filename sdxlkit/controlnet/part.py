"""ControlNet as a UNet part: adds the residuals of one or more ControlNets, each with its own per-residual scales,
uncond handling and step window."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..sampling.token_mask import real_token_rows
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


def _raw_residuals(control: Control, call: UNetCall) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The ControlNet's residuals for the call's rows, each run of rows on its own tokens when the conditioning was
    padded (sampling.token_mask: ControlNetModel takes no attention mask)."""
    sample = call.sample[:, :control.model.config.in_channels]
    cond = control.image.to(sample.device, sample.dtype).expand(sample.shape[0], -1, -1, -1)
    runs = []
    for rows, tokens in real_token_rows(call):
        timestep = call.timestep if torch.as_tensor(call.timestep).ndim == 0 else call.timestep[rows]
        runs.append(control.model(
            sample[rows], timestep, encoder_hidden_states=call.encoder_hidden_states[rows, :tokens],
            controlnet_cond=cond[rows], conditioning_scale=1.0,
            added_cond_kwargs={name: value[rows] for name, value in call.added_cond_kwargs.items()}, return_dict=False))
    if len(runs) == 1:
        return list(runs[0][0]), runs[0][1]
    return [torch.cat(layer) for layer in zip(*(run[0] for run in runs))], torch.cat([run[1] for run in runs])


class ControlNetPart(UNetPart):
    """Calls each ControlNet active at the current step and sums their residuals into the UNet call."""

    def __init__(self, controls: list[Control], guidance: bool):
        self.controls = controls
        self.guidance = guidance
        self.active_steps: list[list[int]] = [[] for _ in controls]  # step indices each control acted at

    def __call__(self, call: UNetCall, forward):
        down_sum = mid_sum = None
        for position, control in enumerate(self.controls):
            if not control.window.active(call.step, call.total):
                continue
            self.active_steps[position].append(call.step)
            raw_down, raw_mid = _raw_residuals(control, call)
            down, mid = scaled_residuals(control, raw_down, raw_mid, self.guidance)
            down_sum = down if down_sum is None else [a + b for a, b in zip(down_sum, down)]
            mid_sum = mid if mid_sum is None else mid_sum + mid
        if down_sum is not None:
            call.kwargs.update(down_block_additional_residuals=down_sum, mid_block_additional_residual=mid_sum)
        return forward(call)
