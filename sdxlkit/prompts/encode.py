"""``encode_prompts``: prompt and negative prompt to SDXL embeddings (see the package docstring)."""

from __future__ import annotations

from ..errors import SdxlKitError
from .a1111 import parse_a1111
from .chunking import build_chunks, chunk_tokens, pad_chunks, token_stream
from .embeds import PromptEmbeds
from .text_encoding import check_clip_skip, encode_chunks, execution_device

WEIGHTINGS = ("sdEmbeds", "compel")


def _check_inputs(tokenizers, text_encoders, prompt, negative_prompt, weighting) -> None:
    if len(tokenizers) != 2 or len(text_encoders) != 2:
        raise SdxlKitError("SDXL prompt encoding needs two tokenizers and two text encoders (CLIP-L and bigG)")
    if not isinstance(prompt, str):
        raise SdxlKitError(f"prompt must be a string, got {type(prompt).__name__}")
    if negative_prompt is not None and not isinstance(negative_prompt, str):
        raise SdxlKitError(f"negative_prompt must be a string or None, got {type(negative_prompt).__name__}")
    if weighting is not None and weighting not in WEIGHTINGS:
        raise SdxlKitError(
            f"unknown prompt weighting {weighting!r}: use 'sdEmbeds' (A1111 syntax), 'compel', or None (plain)"
        )


def _plain(text: str):
    return [(text, 1.0)]


def parser(weighting: str | None):
    """Prompt text -> items for the chunked encodings (plain text, or A1111 syntax for sdEmbeds)."""
    return parse_a1111 if weighting == "sdEmbeds" else _plain


def _encode_chunked(tokenizers, text_encoders, variants, negative, clip_skip, negative_clip_skip, weighting):
    """Plain and sdEmbeds: our chunking. ``variants`` = one token stream per tokenizer for each positive prompt;
    all of them and the negative are padded to the same number of chunks. Returns ``[(embeds, pooled), ...]`` (one
    per variant), the negative's embeds and pooled."""
    weighted = weighting == "sdEmbeds"
    pos = [[chunk_tokens(tok, stream)[0] for tok, stream in zip(tokenizers, variant)] for variant in variants]
    neg = [build_chunks(tok, parser(weighting)(negative)) for tok in tokenizers] if negative is not None else None
    count = max(len(c) for c in [c for variant in pos for c in variant] + (neg or []))
    cache: dict = {}
    encoded = [encode_chunks(text_encoders, [pad_chunks(c, count, tok) for c, tok in zip(variant, tokenizers)],
                             clip_skip, weighted=weighted, cache=cache) for variant in pos]
    if neg is None:
        return encoded, None, None
    neg = [pad_chunks(c, count, tok) for c, tok in zip(neg, tokenizers)]
    neg_embeds, neg_pooled = encode_chunks(text_encoders, neg, negative_clip_skip, weighted=weighted, cache=cache)
    return encoded, neg_embeds, neg_pooled


def _encode_compel(tokenizers, text_encoders, prompt, negative, clip_skip, negative_clip_skip):
    from .compel_backend import pad_to_length, encode_compel

    embeds, pooled, empty = encode_compel(tokenizers, text_encoders, prompt, clip_skip)
    if negative is None:
        return embeds, pooled, None, None
    neg_embeds, neg_pooled, neg_empty = encode_compel(tokenizers, text_encoders, negative, negative_clip_skip)
    length = max(embeds.shape[1], neg_embeds.shape[1])
    return pad_to_length(embeds, length, empty), pooled, pad_to_length(neg_embeds, length, neg_empty), neg_pooled


def encode_prompts(
    tokenizers,
    text_encoders,
    prompt: str,
    negative_prompt: str | None = None,
    *,
    clip_skip: int = 0,
    weighting: str | None = None,
    guidance: bool = True,
    zero_negative_when_empty: bool = True,
    negative_clip_skip: int | None = None,
    device=None,
) -> PromptEmbeds:
    """Encode ``prompt`` (and the negative) with SDXL's two text encoders; no length limit.

    ``tokenizers`` = (CLIP-L tokenizer, bigG tokenizer), ``text_encoders`` = (``CLIPTextModel``,
    ``CLIPTextModelWithProjection``).

    Length: the prompt's tokens are cut into 75-token chunks, each wrapped in BOS/EOS, padded to 77 and encoded
    by both encoders; the chunks are concatenated along the sequence axis (A1111 / sd_embed). Positive and
    negative are padded with empty-prompt chunks to the same number of chunks. A prompt of up to 75 tokens gives
    exactly ``StableDiffusionXLPipeline.encode_prompt``'s result.

    Pooled embedding: bigG's ``text_embeds`` of the **first** chunk. That is what A1111 (``zs[0].pooled``),
    ComfyUI (first 77-token chunk) and compel (prompt truncated to 77 tokens) use, it equals diffusers for any
    prompt diffusers can encode untruncated, and the first chunk holds the start of the prompt, normally its
    subject. (sd_embed ends up with the last chunk's pooled, a side effect of overwriting it in its loop.)

    ``clip_skip``: 0 = SDXL's default, the penultimate hidden state of both encoders (diffusers'
    ``clip_skip=None``); n > 0 = ``hidden_states[-(n + 2)]``, diffusers' ``clip_skip=n``. Equivalent to ComfyUI
    ``CLIPSetLastLayer(stop_at_clip_layer = -(n + 2))``: 0 -> -2 (ComfyUI's SDXL default), 1 -> -3, 2 -> -4.
    ``negative_clip_skip`` (default: same as ``clip_skip``) is the layer for the negative prompt. diffusers
    (0.42) ignores ``clip_skip`` for the negative and always uses ``hidden_states[-2]``: pass
    ``negative_clip_skip=0`` to reproduce that; the default applies clip skip to both, as ComfyUI and A1111 do.

    Negative: None when ``guidance`` is False. Otherwise the encoding of ``negative_prompt``; when it is None,
    zeros (like diffusers with SDXL base's ``force_zeros_for_empty_prompt=True``) if
    ``zero_negative_when_empty``, else the encoding of ``""``. An explicit ``""`` is always encoded, as in diffusers.

    ``weighting``: None = plain text (brackets are literal, no ``BREAK``); ``"sdEmbeds"`` = A1111 syntax
    (:mod:`sdxlkit.prompts.a1111`) with ``BREAK`` and sd_embed's ``z * w`` (:mod:`sdxlkit.prompts.weighting`);
    ``"compel"`` = compel's syntax and weighting (:mod:`sdxlkit.prompts.compel_backend`; needs the ``compel``
    package).

    Output dtype is the second encoder's; device ``device``, by default the second encoder's execution device
    (offload-aware; diffusers casts to ``text_encoder_2.dtype`` and moves to the pipeline's execution device).
    """
    _check_inputs(tokenizers, text_encoders, prompt, negative_prompt, weighting)
    if weighting == "compel":
        return _encode(tokenizers, text_encoders, None, prompt, negative_prompt, clip_skip=clip_skip,
                       weighting=weighting, guidance=guidance, zero_negative_when_empty=zero_negative_when_empty,
                       negative_clip_skip=negative_clip_skip, device=device)[0]
    streams = [token_stream(tok, parser(weighting)(prompt)) for tok in tokenizers]
    return encode_token_variants(tokenizers, text_encoders, [streams], negative_prompt, clip_skip=clip_skip,
                                 weighting=weighting, guidance=guidance,
                                 zero_negative_when_empty=zero_negative_when_empty,
                                 negative_clip_skip=negative_clip_skip, device=device)[0]


def encode_token_variants(tokenizers, text_encoders, variants: list[list[list]], negative_prompt: str | None = None,
                          *, clip_skip: int = 0, weighting: str | None = None, guidance: bool = True,
                          zero_negative_when_empty: bool = True, negative_clip_skip: int | None = None,
                          device=None) -> list[PromptEmbeds]:
    """Several positive prompts given as token streams (``variants[v][t]`` = variant v for tokenizer t, see
    chunking.token_stream) with one negative, encoded like :func:`encode_prompts` (plain or sdEmbeds weighting)
    and padded to one length, so that a pass may switch between them; one PromptEmbeds per variant, the negative
    shared."""
    if weighting == "compel":
        raise SdxlKitError("token-level prompt variants need plain or sdEmbeds weighting, not compel")
    return _encode(tokenizers, text_encoders, variants, "", negative_prompt, clip_skip=clip_skip, weighting=weighting,
                   guidance=guidance, zero_negative_when_empty=zero_negative_when_empty,
                   negative_clip_skip=negative_clip_skip, device=device)


def _encode(tokenizers, text_encoders, variants, prompt, negative_prompt, *, clip_skip, weighting, guidance,
            zero_negative_when_empty, negative_clip_skip, device) -> list[PromptEmbeds]:
    import torch

    _check_inputs(tokenizers, text_encoders, prompt, negative_prompt, weighting)
    negative_clip_skip = clip_skip if negative_clip_skip is None else negative_clip_skip
    check_clip_skip(text_encoders, clip_skip)
    check_clip_skip(text_encoders, negative_clip_skip, "negative_clip_skip")

    zero_negative = guidance and negative_prompt is None and zero_negative_when_empty
    negative = None
    if guidance and not zero_negative:
        negative = negative_prompt if negative_prompt is not None else ""

    with torch.no_grad():
        if weighting == "compel":
            embeds, pooled, neg_embeds, neg_pooled = _encode_compel(
                tokenizers, text_encoders, prompt, negative, clip_skip, negative_clip_skip
            )
            encoded = [(embeds, pooled)]
        else:
            encoded, neg_embeds, neg_pooled = _encode_chunked(
                tokenizers, text_encoders, variants, negative, clip_skip, negative_clip_skip, weighting
            )

    encoder_2 = text_encoders[1]
    dtype = encoder_2.dtype
    device = device if device is not None else execution_device(encoder_2)
    results = []
    for embeds, pooled in encoded:
        embeds = embeds.to(dtype=dtype, device=device)
        pooled = pooled.to(dtype=dtype, device=device)
        if zero_negative:
            neg_embeds, neg_pooled = torch.zeros_like(embeds), torch.zeros_like(pooled)
        elif neg_embeds is not None:
            neg_embeds = neg_embeds.to(dtype=dtype, device=device)
            neg_pooled = neg_pooled.to(dtype=dtype, device=device)
        results.append(PromptEmbeds(embeds, pooled, neg_embeds, neg_pooled))
    return results
