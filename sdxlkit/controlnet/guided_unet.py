"""A UNet that adds the residuals of one or more ControlNets, each with its own per-residual scales, uncond handling
and step window. It stands in for the UNet inside diffusers' SDXL pipelines (txt2img, img2img, inpaint)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .scales import StepWindow, residual_scales, zeroes_uncond


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


class ControlledUNet(torch.nn.Module):
    """Calls each ControlNet active at the current step and sums their residuals into the UNet call.

    Steps are counted by calls: diffusers' denoising loops call the UNet exactly once per iteration (both CFG
    halves go in one batch), and the iterations left to run are read off the scheduler.
    """

    def __init__(self, unet: torch.nn.Module, controls: list[Control], scheduler, guidance: bool):
        super().__init__()
        self.unet = unet
        self.controls = controls
        self.scheduler = scheduler
        self.guidance = guidance
        self.calls = 0
        self.active_steps: list[list[int]] = [[] for _ in controls]  # step indices each control acted at

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["unet"], name)  # config, dtype, add_embedding, ... of the real UNet

    def _iterations(self) -> int:
        return len(self.scheduler.timesteps) - (getattr(self.scheduler, "begin_index", None) or 0)

    def forward(self, sample, timestep, encoder_hidden_states, *args, added_cond_kwargs=None, **kwargs):
        index, total = self.calls, self._iterations()
        self.calls += 1
        down_sum = mid_sum = None
        for position, control in enumerate(self.controls):
            if not control.window.active(index, total):
                continue
            self.active_steps[position].append(index)
            cond = control.image.to(sample.device, sample.dtype).expand(sample.shape[0], -1, -1, -1)
            raw_down, raw_mid = control.model(
                sample[:, :control.model.config.in_channels], timestep, encoder_hidden_states=encoder_hidden_states,
                controlnet_cond=cond, conditioning_scale=1.0, added_cond_kwargs=added_cond_kwargs, return_dict=False)
            down, mid = scaled_residuals(control, list(raw_down), raw_mid, self.guidance)
            down_sum = down if down_sum is None else [a + b for a, b in zip(down_sum, down)]
            mid_sum = mid if mid_sum is None else mid_sum + mid
        return self.unet(sample, timestep, encoder_hidden_states, *args, added_cond_kwargs=added_cond_kwargs,
                         down_block_additional_residuals=down_sum, mid_block_additional_residual=mid_sum, **kwargs)
