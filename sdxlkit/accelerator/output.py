"""What a UNet call returns, in the form its caller asked for (diffusers' pipelines pass return_dict=False)."""

from __future__ import annotations

import torch

from ..sampling.unet import UNetCall


def unet_output(call: UNetCall, sample: torch.Tensor):
    if call.kwargs.get("return_dict", True):
        from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

        return UNet2DConditionOutput(sample=sample)
    return (sample,)
