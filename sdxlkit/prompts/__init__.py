"""SDXL prompt encoding: unlimited length, clip skip, A1111 ("sdEmbeds") or compel weighting.

Public API: :func:`encode_prompts` -> :class:`PromptEmbeds`. Importing this package does not import torch.

Modules: ``a1111`` (the A1111 emphasis parser), ``chunking`` (75-token chunks), ``text_encoding`` (running the
encoders, clip skip), ``weighting`` (sd_embed's ``z * w``), ``compel_backend`` (compel), ``encode`` (the
orchestration), ``embeds`` (the result type), ``token_prompt`` (a prompt handed over as edited tokens).
"""

from .a1111 import BREAK, parse_a1111
from .embeds import PromptEmbeds
from .encode import WEIGHTINGS, encode_prompts
from .text_encoding import clip_skip_from_comfy_layer, comfy_stop_at_clip_layer

__all__ = [
    "BREAK",
    "PromptEmbeds",
    "WEIGHTINGS",
    "clip_skip_from_comfy_layer",
    "comfy_stop_at_clip_layer",
    "encode_prompts",
    "parse_a1111",
]
