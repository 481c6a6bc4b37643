"""The cross-attention processor installed where at least one IP-Adapter acts: diffusers' AttnProcessor2_0 for the
text, plus each adapter's image attention before the output projection, as cubiq's Attn2Replace does:
out = Attn(q, K_text, V_text) + sum over adapters of Attn(q, K_img, V_img) * factor (K, V, factor from the
adapter's embed scaling, see weights.scaled_kv)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import weights


@dataclass
class ImagePrompt:
    """One adapter at one block: its k/v projections there, its image tokens [1, T, width] and its weight."""

    to_k: nn.Linear
    to_v: nn.Linear
    cond: torch.Tensor
    uncond: torch.Tensor
    weight: float
    scaling: str


class IPAdapterAttnProcessor:
    def __init__(self, block: int, prompts: list[ImagePrompt], guidance: bool):
        self.block = block  # cubiq's transformer index t
        self.prompts = prompts
        self.guidance = guidance  # the batch is [uncond rows, cond rows] (diffusers' CFG order)

    def _tokens(self, prompt: ImagePrompt, batch: int) -> torch.Tensor:
        half = batch // 2 if self.guidance else 0
        return torch.cat([prompt.uncond.expand(half, -1, -1), prompt.cond.expand(batch - half, -1, -1)])

    def _image_attention(self, prompt: ImagePrompt, query: torch.Tensor, heads: int) -> torch.Tensor:
        batch = query.shape[0]
        tokens = self._tokens(prompt, batch).to(query.device, prompt.to_k.weight.dtype)
        k, v, factor = weights.scaled_kv(prompt.to_k(tokens), prompt.to_v(tokens), prompt.weight, prompt.scaling)
        k, v = (x.to(query.dtype).view(batch, -1, heads, query.shape[-1]).transpose(1, 2) for x in (k, v))
        return F.scaled_dot_product_attention(query, k, v) * factor

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None, *args, **kwargs):
        if attn.spatial_norm is not None or attn.group_norm is not None or hidden_states.ndim != 3:
            raise ValueError("IP-Adapter: an attention layer unlike SDXL's cross-attention")
        batch = hidden_states.shape[0]
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, context.shape[1], batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
        if attn.norm_cross and encoder_hidden_states is not None:
            context = attn.norm_encoder_hidden_states(context)
        query, key, value = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        head_dim = key.shape[-1] // attn.heads
        query, key, value = (x.view(batch, -1, attn.heads, head_dim).transpose(1, 2) for x in (query, key, value))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask, dropout_p=0.0, is_causal=False)
        for prompt in self.prompts:
            out = out + self._image_attention(prompt, query, attn.heads)
        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor
