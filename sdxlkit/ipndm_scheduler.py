"""IPNDM on SDXL's sigmas, as ComfyUI's "ipndm" sampler (k-diffusion's ``sample_ipndm``, max order 4).

diffusers' IPNDMScheduler builds its own v-diffusion schedule and cannot sample SDXL. This is the improved
pseudo-numerical method of Zhang & Chen as k-diffusion and ComfyUI run it: Euler's derivative d = (x - denoised) / sigma,
combined with up to three earlier ones by the Adams-Bashforth weights of order 1..4, and the denoised image itself
on the step to sigma 0. The UNet gets the training timestep nearest each sigma, as in ComfyUI. The history starts
empty at every ``set_timesteps``, as each ComfyUI sampler call does (img2img, a refiner split, hires passes).
"""

from __future__ import annotations

import torch
from diffusers import EulerDiscreteScheduler
from diffusers.schedulers.scheduling_euler_discrete import EulerDiscreteSchedulerOutput

MAX_ORDER = 4


def _denoised(prediction_type: str, model_output: torch.Tensor, sample: torch.Tensor, sigma) -> torch.Tensor:
    if prediction_type == "epsilon":
        return sample - model_output * sigma
    if prediction_type == "v_prediction":
        return model_output * (-sigma / (sigma**2 + 1) ** 0.5) + (sample / (sigma**2 + 1))
    raise ValueError(f"IPNDM: prediction_type {prediction_type!r} is not supported (epsilon or v_prediction)")


def ipndm_update(x: torch.Tensor, d: torch.Tensor, history: list, sigma, sigma_next) -> torch.Tensor:
    """k-diffusion's sample_ipndm step from sigma to sigma_next > 0; `history` holds the earlier derivatives."""
    order = min(MAX_ORDER, len(history) + 1)
    if order == 1:
        return x + (sigma_next - sigma) * d
    if order == 2:
        return x + (sigma_next - sigma) * (3 * d - history[-1]) / 2
    if order == 3:
        return x + (sigma_next - sigma) * (23 * d - 16 * history[-1] + 5 * history[-2]) / 12
    return x + (sigma_next - sigma) * (55 * d - 59 * history[-1] + 37 * history[-2] - 9 * history[-3]) / 24


class IPNDMSigmaScheduler(EulerDiscreteScheduler):
    """Euler's sigmas, timestep rule and input scaling, with IPNDM's multistep update."""

    _derivatives: list

    def set_timesteps(self, *args, **kwargs):
        super().set_timesteps(*args, **kwargs)
        self.timesteps = self.timesteps.round()
        self._derivatives = []

    def step(self, model_output: torch.Tensor, timestep, sample: torch.Tensor, s_churn: float = 0.0,
             s_tmin: float = 0.0, s_tmax: float = float("inf"), s_noise: float = 1.0, generator=None,
             return_dict: bool = True):
        if self.step_index is None:
            self._init_step_index(timestep)
        sigma, sigma_next = self.sigmas[self.step_index], self.sigmas[self.step_index + 1]
        x = sample.to(torch.float32)
        denoised = _denoised(self.config.prediction_type, model_output, x, sigma)
        d = (x - denoised) / sigma
        previous = denoised if sigma_next == 0 else ipndm_update(x, d, self._derivatives, sigma, sigma_next)
        self._derivatives = (self._derivatives + [d])[-(MAX_ORDER - 1):]
        self._step_index += 1
        previous = previous.to(model_output.dtype)
        if not return_dict:
            return previous, denoised
        return EulerDiscreteSchedulerOutput(prev_sample=previous, pred_original_sample=denoised)
