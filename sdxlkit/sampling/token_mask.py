"""Conditioning padded to one length (prompts.alignment) with the padding masked out of cross-attention.

The part gives every UNet call `encoder_attention_mask`, each row its own conditioning's mask: the negative's for
the unconditional rows and the prompt's for the others, in diffusers' CFG order. UNet2DConditionModel turns it
into a -10000 bias on the padded keys in every cross-attention (IP-Adapter's processor included), which leaves them
exactly zero weight. A ControlNet's forward takes no such mask, so `real_token_rows` lets it run each run of rows
on their own tokens instead.
"""

from __future__ import annotations

import torch

from .unet import UNetCall, UNetPart

MASK = "encoder_attention_mask"


class TokenMaskPart(UNetPart):
    def __init__(self, positive_mask: torch.Tensor, negative_mask: torch.Tensor, guidance: bool):
        self.positive, self.negative = positive_mask, negative_mask
        self.guidance = guidance

    def __call__(self, call: UNetCall, forward):
        rows = call.sample.shape[0]
        unconditional = rows // 2 if self.guidance else 0  # [uncond rows, cond rows]
        mask = torch.cat([self.negative.expand(unconditional, -1), self.positive.expand(rows - unconditional, -1)])
        call.kwargs[MASK] = mask.to(call.sample.device)
        return forward(call)


def token_mask_parts(embeds, guidance: bool) -> list[UNetPart]:
    """The part a pass needs for `embeds` (a PromptEmbeds): none unless they were padded."""
    if embeds.prompt_mask is None:
        return []
    return [TokenMaskPart(embeds.prompt_mask, embeds.negative_mask, guidance)]


def real_token_rows(call: UNetCall) -> list[tuple[slice, int | None]]:
    """The call's rows in runs that share a mask, each with the number of its own tokens (the padding is at the
    end); one run of all rows and None without a mask."""
    mask = call.kwargs.get(MASK)
    if mask is None:
        return [(slice(None), None)]
    runs, start = [], 0
    for row in range(1, mask.shape[0] + 1):
        if row == mask.shape[0] or not torch.equal(mask[row], mask[start]):
            runs.append((slice(start, row), int(mask[start].sum())))
            start = row
    return runs
