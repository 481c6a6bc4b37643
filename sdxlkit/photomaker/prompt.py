"""PhotoMaker's two prompts (TencentARC photomaker/pipeline.py, V1): the trigger word `img` follows a class word
("a man img", "a woman img"). The *text-only* prompt is the prompt without the trigger; the *identity* prompt also
drops the trigger and repeats the class word's token once per photo, and the ID encoder replaces those copies' text
embeddings (both encoders' concatenated) by their fusion with the photos' embeddings.

Token-level, inside the engine's chunked encoding, so it works with prompts of any length and with sdEmbeds
weighting (copies keep the class word's weight). CLIP lowercases, so `IMG` is the trigger too; `imgs` or `imgur` are
not (other tokens)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SdxlKitError
from ..prompts.a1111 import BREAK
from ..prompts.embeds import PromptEmbeds
from ..prompts.chunking import CHUNK_LENGTH, chunk_tokens, token_stream, tokenize_fragment
from ..prompts.encode import comma_backtrack, encode_token_variants, parser

TRIGGER = "img"


@dataclass
class IdentityEmbeds(PromptEmbeds):
    """The text-only prompt's embeddings (what the pipeline is given) and the identity prompt's, one length."""

    identity: PromptEmbeds | None = None


@dataclass
class IdentityStreams:
    text_only: list  # token stream without the trigger
    identity: list  # ... and the class token repeated once per photo
    copies: list[int]  # indices of the class-token copies among identity's tokens (BREAKs not counted)


def trigger_error(tokenizer, prompt: str, weighting: str | None) -> str | None:
    """Why `prompt` cannot carry a PhotoMaker identity, or None."""
    try:
        _split(tokenizer, token_stream(tokenizer, parser(weighting)(prompt)), 1)
    except SdxlKitError as exc:
        return str(exc)
    return None


def _split(tokenizer, stream: list, photos: int) -> IdentityStreams:
    trigger = tokenize_fragment(tokenizer, TRIGGER)[0]
    found = [i for i, token in enumerate(stream) if token is not BREAK and token[0] == trigger]
    if len(found) != 1:
        raise SdxlKitError(
            f"PhotoMaker needs the trigger word {TRIGGER!r} exactly once, right after the class word of the person "
            f"(e.g. 'a photo of a man {TRIGGER}', 'a woman {TRIGGER} in a garden'); found it {len(found)} times")
    at = found[0]
    before = [i for i in range(at) if stream[i] is not BREAK]
    if not before:
        raise SdxlKitError(f"PhotoMaker's trigger word {TRIGGER!r} must follow a class word (man, woman, girl, ...), "
                           "not start the prompt")
    text_only = stream[:at] + stream[at + 1:]
    cls = before[-1]
    identity = text_only[:cls] + [text_only[cls]] * photos + text_only[cls + 1:]
    first = sum(1 for token in text_only[:cls] if token is not BREAK)
    return IdentityStreams(text_only, identity, list(range(first, first + photos)))


def encode_identity_prompts(tokenizers, text_encoders, encoder, pixel_values, prompt: str, negative: str | None, *,
                            clip_skip: int, weighting: str | None, guidance: bool):
    """IdentityEmbeds: the text-only prompt with the identity prompt beside it, the negative shared; the identity
    prompt's class-token copies fused with the photos (pixel_values [photos, 3, 224, 224]), in photo order."""
    import torch

    photos = pixel_values.shape[0]
    split = [_split(tok, token_stream(tok, parser(weighting)(prompt)), photos) for tok in tokenizers]
    chunked = [chunk_tokens(tok, s.identity, comma_backtrack(weighting)) for tok, s in zip(tokenizers, split)]
    positions = [[chunked_positions[i] for i in s.copies] for (_, chunked_positions), s in zip(chunked, split)]
    if positions[0] != positions[1]:
        raise SdxlKitError("PhotoMaker: the two tokenizers place the class word differently")
    text_only, identity = encode_token_variants(
        tokenizers, text_encoders, [[s.text_only for s in split], [s.identity for s in split]], negative,
        clip_skip=clip_skip, weighting=weighting, guidance=guidance)
    # the encoding may repeat the identity prompt to a common length (prompts.alignment): fuse it once, repeat it
    length = len(chunked[0][0]) * CHUNK_LENGTH
    embeds = identity.prompt_embeds
    mask = torch.zeros(length, dtype=torch.bool)
    mask[positions[0]] = True
    with torch.no_grad():
        fused = encoder(pixel_values.to(embeds.device), embeds[:, :length], mask.to(embeds.device))
    identity.prompt_embeds = fused.repeat(1, embeds.shape[1] // length, 1)
    return IdentityEmbeds(text_only.prompt_embeds, text_only.pooled_prompt_embeds, text_only.negative_prompt_embeds,
                          text_only.negative_pooled_prompt_embeds, identity=identity)
