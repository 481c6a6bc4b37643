"""``encode_prompts``: prompt and negative prompt to SDXL embeddings (see the package docstring)."""

from __future__ import annotations

from contextlib import nullcontext

from ..errors import SdxlKitError
from .a1111 import parse_a1111
from .alignment import aligned
from .chunking import COMMA_BACKTRACK, build_chunks
from .embeds import PromptEmbeds
from .text_encoding import check_clip_skip, encode_chunks, execution_device
from .token_prompt import prompt_items

WEIGHTINGS = ("sdEmbeds", "compel")
BLANK = "__BLANK__"  # the format's positive prompt for an unguided image


def _check_inputs(tokenizers, text_encoders, prompt, negative_prompt, weighting) -> None:
    if len(tokenizers) != len(text_encoders) or len(text_encoders) not in (1, 2):
        raise SdxlKitError("SDXL prompt encoding needs the tokenizers and text encoders of the model: CLIP-L and "
                           "bigG (base models), or bigG alone (the refiner)")
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
    """Prompt text -> items for the chunked encodings: A1111 syntax under sdEmbeds, else plain text."""
    return parse_a1111 if weighting == "sdEmbeds" else _plain


def comma_backtrack(weighting: str | None) -> int:
    """The chunking's comma back-tracking: A1111's under sdEmbeds, none for plain prompts."""
    return COMMA_BACKTRACK if weighting == "sdEmbeds" else 0


def _encode_chunked(tokenizers, text_encoders, prompt, negative, clip_skip, negative_clip_skip, weighting):
    """Plain and sdEmbeds: our chunking (A1111's comma back-tracking under sdEmbeds)."""
    parse = parser(weighting)
    weighted = weighting == "sdEmbeds"
    backtrack = comma_backtrack(weighting)
    cache: dict = {}

    def encode(text, skip):
        chunks = [build_chunks(tok, prompt_items(text, i, parse), comma_backtrack=backtrack)
                  for i, tok in enumerate(tokenizers)]
        return encode_chunks(text_encoders, chunks, skip, weighted=weighted, cache=cache)

    embeds, pooled = encode(prompt, clip_skip)
    if negative is None:
        return embeds, pooled, None, None
    neg_embeds, neg_pooled = encode(negative, negative_clip_skip)
    return embeds, pooled, neg_embeds, neg_pooled


def _encode_compel(tokenizers, text_encoders, prompt, negative, clip_skip, negative_clip_skip):
    from .compel_backend import encode_compel

    embeds, pooled = encode_compel(tokenizers, text_encoders, prompt, clip_skip)
    if negative is None:
        return embeds, pooled, None, None
    neg_embeds, neg_pooled = encode_compel(tokenizers, text_encoders, negative, negative_clip_skip)
    return embeds, pooled, neg_embeds, neg_pooled


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
    embeddings=None,
) -> PromptEmbeds:
    """Encode ``prompt`` (and the negative) with SDXL's two text encoders; no length limit.

    ``tokenizers`` = (CLIP-L tokenizer, bigG tokenizer), ``text_encoders`` = (``CLIPTextModel``,
    ``CLIPTextModelWithProjection``); the refiner's are (bigG tokenizer,) and (``CLIPTextModelWithProjection``,),
    giving bigG's hidden states alone (1280 wide), as diffusers' refiner pipeline.

    Length: the prompt's tokens are cut into 75-token chunks (under ``"sdEmbeds"`` with A1111's comma
    back-tracking, see :func:`sdxlkit.prompts.chunking.build_chunks`), each wrapped in BOS/EOS, padded to 77 and
    encoded by both encoders; the chunks are concatenated along the sequence axis (A1111 / sd_embed). Positive
    and negative of different lengths are brought to one length in a way that leaves attention unchanged:
    repeated, or padded with ``prompt_mask``/``negative_mask`` marking their own tokens
    (:mod:`sdxlkit.prompts.alignment`). A prompt of up to 75 tokens gives exactly
    ``StableDiffusionXLPipeline.encode_prompt``'s result.

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

    ``prompt`` ``"__BLANK__"`` (the format's unguided image): the unconditional embedding (what an absent negative
    prompt gives: zeros, or the encoding of ``""`` without ``zero_negative_when_empty``) on both branches, whatever
    the negative prompt; classifier-free guidance then leaves the unconditional prediction unchanged.

    ``embeddings``: textual inversions (:class:`sdxlkit.embeddings.PromptEmbeddings`) whose names in the prompts
    become their vectors, injected for this call only.

    Output dtype is the second encoder's; device ``device``, by default the second encoder's execution device
    (offload-aware; diffusers casts to ``text_encoder_2.dtype`` and moves to the pipeline's execution device).
    """
    import torch

    _check_inputs(tokenizers, text_encoders, prompt, negative_prompt, weighting)
    negative_clip_skip = clip_skip if negative_clip_skip is None else negative_clip_skip
    check_clip_skip(text_encoders, clip_skip)
    check_clip_skip(text_encoders, negative_clip_skip, "negative_clip_skip")

    blank = prompt.strip() == BLANK
    if blank:
        prompt, negative_prompt, weighting = "", None, None
    zero_negative = guidance and negative_prompt is None and zero_negative_when_empty
    negative = None
    if guidance and not zero_negative and not blank:
        negative = negative_prompt if negative_prompt is not None else ""

    applied = embeddings.applied(tokenizers, text_encoders) if embeddings is not None else nullcontext(tokenizers)
    with torch.no_grad(), applied as tokenizers:
        if weighting == "compel":
            embeds, pooled, neg_embeds, neg_pooled = _encode_compel(
                tokenizers, text_encoders, prompt, negative, clip_skip, negative_clip_skip
            )
        else:
            embeds, pooled, neg_embeds, neg_pooled = _encode_chunked(
                tokenizers, text_encoders, prompt, negative, clip_skip, negative_clip_skip, weighting
            )

    encoder_2 = text_encoders[-1]
    dtype = encoder_2.dtype
    device = device if device is not None else execution_device(encoder_2)
    embeds = embeds.to(dtype=dtype, device=device)
    pooled = pooled.to(dtype=dtype, device=device)
    if blank:
        if zero_negative_when_empty:
            embeds, pooled = torch.zeros_like(embeds), torch.zeros_like(pooled)
        neg_embeds, neg_pooled = (embeds, pooled) if guidance else (None, None)
    elif zero_negative:
        neg_embeds, neg_pooled = torch.zeros_like(embeds), torch.zeros_like(pooled)
    elif neg_embeds is not None:
        embeds, neg_embeds, mask, neg_mask = aligned(embeds, neg_embeds.to(dtype=dtype, device=device))
        neg_pooled = neg_pooled.to(dtype=dtype, device=device)
        return PromptEmbeds(embeds, pooled, neg_embeds, neg_pooled, mask, neg_mask)
    return PromptEmbeds(embeds, pooled, neg_embeds, neg_pooled)
