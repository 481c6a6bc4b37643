"""The result of prompt encoding: what ``StableDiffusionXLPipeline.__call__`` takes instead of strings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class PromptEmbeds:
    """SDXL conditioning for one prompt (batch 1).

    ``prompt_embeds`` [1, 77*chunks, D1+D2] (2048 for SDXL), ``pooled_prompt_embeds`` [1, P] (1280 for SDXL);
    the negatives have the same shapes, or are None when encoded without classifier-free guidance.
    ``prompt_mask``/``negative_mask`` [1, L] (bool) mark each one's own tokens when they were padded to one length
    (prompts.alignment); None when every token is their own.
    """

    prompt_embeds: Any
    pooled_prompt_embeds: Any
    negative_prompt_embeds: Any = None
    negative_pooled_prompt_embeds: Any = None
    prompt_mask: Any = None
    negative_mask: Any = None

    def pipeline_kwargs(self) -> dict:
        """Keyword arguments for a diffusers SDXL pipeline call (the negatives only when present)."""
        kwargs = {"prompt_embeds": self.prompt_embeds, "pooled_prompt_embeds": self.pooled_prompt_embeds}
        if self.negative_prompt_embeds is not None:
            kwargs["negative_prompt_embeds"] = self.negative_prompt_embeds
            kwargs["negative_pooled_prompt_embeds"] = self.negative_pooled_prompt_embeds
        return kwargs
