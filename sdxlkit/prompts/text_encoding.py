"""Running SDXL's two CLIP text encoders over token chunks, and which hidden state clip skip selects.

Clip skip, in the engine's convention (the task's ``clipSkip``, 0..4, "additional layers to skip on top of the
model's own setting"):

- ``clip_skip = 0``: SDXL's own setting, the penultimate hidden state of both encoders without the final
  LayerNorm, ``hidden_states[-2]`` -- what diffusers uses when ``clip_skip`` is None;
- ``clip_skip = n > 0``: ``hidden_states[-(n + 2)]`` of both encoders, diffusers' ``clip_skip=n``;
- ComfyUI: ``CLIPSetLastLayer(stop_at_clip_layer = -(n + 2))`` (-2 is ComfyUI's SDXL default, -3 = clip_skip 1).
  ``stop_at_clip_layer = -1`` (the last layer) has no clip_skip equivalent here.
"""

from __future__ import annotations

from ..errors import SdxlKitError
from .chunking import Chunk


def hidden_state_index(clip_skip: int) -> int:
    """Index into ``hidden_states`` for ``clip_skip``: 0 -> -2 (penultimate), 1 -> -3, ..."""
    return -(clip_skip + 2)


def comfy_stop_at_clip_layer(clip_skip: int) -> int:
    """ComfyUI ``CLIPSetLastLayer.stop_at_clip_layer`` giving the same layer as ``clip_skip``."""
    return -(clip_skip + 2)


def clip_skip_from_comfy_layer(stop_at_clip_layer: int) -> int:
    """Inverse of :func:`comfy_stop_at_clip_layer`; -1 (the last layer) is not expressible and raises."""
    if stop_at_clip_layer > -2:
        raise SdxlKitError(
            f"stop_at_clip_layer {stop_at_clip_layer} selects a later layer than SDXL's default (-2); "
            "clip skip here counts from the penultimate layer, so use -2 or lower"
        )
    return -stop_at_clip_layer - 2


def check_clip_skip(text_encoders, clip_skip: int, name: str = "clip_skip") -> None:
    """Raise unless ``clip_skip`` is an int that every encoder has enough layers for."""
    if isinstance(clip_skip, bool) or not isinstance(clip_skip, int) or clip_skip < 0:
        raise SdxlKitError(f"{name} must be an integer >= 0 (0 = SDXL's default penultimate layer), got {clip_skip!r}")
    for encoder in text_encoders:
        layers = getattr(getattr(encoder, "config", None), "num_hidden_layers", None)
        if layers is not None and clip_skip + 2 > layers + 1:
            raise SdxlKitError(
                f"{name}={clip_skip} is too large for a text encoder with {layers} layers "
                f"(at most {layers - 1})"
            )


def execution_device(module):
    """Where ``module``'s inputs must go: diffusers' offload-aware helper when available, else ``module.device``."""
    try:
        from diffusers.utils.torch_utils import get_module_execution_device
    except ImportError:
        return getattr(module, "device", None)
    return get_module_execution_device(module)


def encode_chunk(encoder, ids: tuple[int, ...], clip_skip: int):
    """One chunk through one encoder: ``(hidden [1, 77, D], pooled [1, P] or None)``.

    ``pooled`` follows diffusers: the encoder output's first field when it is 2-D, i.e. ``text_embeds`` of
    ``CLIPTextModelWithProjection``; None for a plain ``CLIPTextModel``.
    """
    import torch

    tokens = torch.tensor([ids], dtype=torch.long, device=execution_device(encoder))
    out = encoder(tokens, output_hidden_states=True)
    hidden = out.hidden_states[hidden_state_index(clip_skip)]
    first = out[0]
    pooled = first if first.ndim == 2 else None
    return hidden, pooled


def encode_chunks(text_encoders, chunk_lists: list[list[Chunk]], clip_skip: int, *, weighted: bool, cache=None):
    """Encode each encoder's chunks; return ``(embeds [1, 77*N, sum D], pooled [1, P])``.

    Chunks are encoded one at a time (batch 1), so a chunk's embedding does not depend on the others and a
    one-chunk prompt gives bit-for-bit what diffusers gives. ``pooled`` is that of the **first** chunk (see
    :mod:`sdxlkit.prompts.encode`). With ``weighted`` each chunk's hidden states are scaled by its token weights
    (:func:`sdxlkit.prompts.weighting.apply_token_weights`). ``cache`` (a dict) shares encodings of identical
    chunks between calls, e.g. the empty padding chunks.
    """
    import torch

    from .weighting import apply_token_weights

    cache = {} if cache is None else cache
    per_encoder = []
    pooled = None
    for index, (encoder, chunks) in enumerate(zip(text_encoders, chunk_lists)):
        states = []
        for position, chunk in enumerate(chunks):
            key = (index, chunk.ids, clip_skip)
            if key not in cache:
                cache[key] = encode_chunk(encoder, chunk.ids, clip_skip)
            hidden, chunk_pooled = cache[key]
            if position == 0 and pooled is None and chunk_pooled is not None:
                pooled = chunk_pooled
            states.append(apply_token_weights(hidden, chunk.weights) if weighted else hidden)
        per_encoder.append(torch.cat(states, dim=1) if len(states) > 1 else states[0])
    if pooled is None:
        raise SdxlKitError(
            "no pooled text embedding: SDXL's second text encoder must be a CLIPTextModelWithProjection"
        )
    return torch.cat(per_encoder, dim=-1), pooled
