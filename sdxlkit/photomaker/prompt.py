"""PhotoMaker's two prompts (TencentARC photomaker/pipeline.py, V1): the trigger word `img` follows a class word
("a man img", "a woman img"). The *text-only* prompt is the prompt without the trigger; the *identity* prompt also
drops the trigger and repeats the class word's token once per photo, and the ID encoder replaces those copies' text
embeddings (both encoders' concatenated) by their fusion with the photos' embeddings.

Token-level, inside the engine's chunked encoding (prompts.token_prompt), so it works with prompts of any length and
with sdEmbeds weighting (copies keep the class word's weight). CLIP lowercases, so `IMG` is the trigger too; `imgs`
or `imgur` are not (other tokens)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import SdxlKitError
from ..prompts.a1111 import BREAK
from ..prompts.alignment import repeat_to_common_length, unpadded
from ..prompts.chunking import CHUNK_LENGTH, build_chunks, tokenize_fragment
from ..prompts.embeds import PromptEmbeds
from ..prompts.encode import comma_backtrack, encode_prompts, parser
from ..prompts.token_prompt import TokenPrompt, tokenized

TRIGGER = "img"
# the trigger as CLIP's tokenizer cuts it: a run of letters, whatever is not a letter beside it
_TRIGGER_WORD = re.compile(rf"(?<![^\W\d_]){TRIGGER}(?![^\W\d_])", re.IGNORECASE)


@dataclass
class IdentityEmbeds(PromptEmbeds):
    """The text-only prompt's embeddings (what the pipeline is given) and the identity prompt's, one length."""

    identity: PromptEmbeds | None = None


@dataclass
class IdentityItems:
    text_only: list  # tokenized items without the trigger
    identity: list  # ... and the class token repeated once per photo
    copies: list[int]  # indices of the class-token copies among identity's tokens


def _tokens(items: list) -> list[tuple[int, int, int]]:
    """(item index, index in the item, token id) of every token of tokenized items."""
    return [(i, j, token) for i, item in enumerate(items) if item is not BREAK for j, token in enumerate(item[0])]


def _replace(items: list, index: int, tokens: tuple) -> list:
    return [*items[:index], (tokens, items[index][1]), *items[index + 1:]]


def _split(tokenizer, items: list, photos: int) -> IdentityItems:
    trigger = tokenize_fragment(tokenizer, TRIGGER)[0]
    tokens = _tokens(items)
    found = [n for n, (_, _, token) in enumerate(tokens) if token == trigger]
    if len(found) != 1:
        raise SdxlKitError(
            f"PhotoMaker needs the trigger word {TRIGGER!r} exactly once, right after the class word of the person "
            f"(e.g. 'a photo of a man {TRIGGER}', 'a woman {TRIGGER} in a garden'); found it {len(found)} times")
    at = found[0]
    if at == 0:
        raise SdxlKitError(f"PhotoMaker's trigger word {TRIGGER!r} must follow a class word (man, woman, girl, ...), "
                           "not start the prompt")
    item, j, _ = tokens[at]
    text_only = _replace(items, item, items[item][0][:j] + items[item][0][j + 1:])
    cls_item, cls_j, cls_token = tokens[at - 1]
    ids = text_only[cls_item][0]
    identity = _replace(text_only, cls_item, ids[:cls_j] + (cls_token,) * photos + ids[cls_j + 1:])
    return IdentityItems(text_only, identity, list(range(at - 1, at - 1 + photos)))


def without_trigger(prompt: str) -> str:
    """The prompt with its trigger word taken out, for a model with no identity to fill in (the refiner): the text
    whose tokens are the text-only prompt's, the words around the trigger keeping theirs."""
    return _TRIGGER_WORD.sub("", prompt, count=1)


def trigger_error(tokenizer, prompt: str, weighting: str | None) -> str | None:
    """Why `prompt` cannot carry a PhotoMaker identity, or None."""
    try:
        _split(tokenizer, tokenized(tokenizer, parser(weighting)(prompt)), 1)
    except SdxlKitError as exc:
        return str(exc)
    return None


def _copy_positions(tokenizer, split: IdentityItems, weighting: str | None) -> tuple[int, list[int]]:
    """The identity prompt's length in tokens and where its class-token copies are, as the encoding chunks it."""
    chunks = build_chunks(tokenizer, split.identity, comma_backtrack(weighting))
    positions = [c * CHUNK_LENGTH + 1 + j for c, chunk in enumerate(chunks)
                 for j in range(chunk.ids.index(tokenizer.eos_token_id, 1) - 1)]
    if len(positions) != len(_tokens(split.identity)):  # an end-of-text token typed into the prompt
        raise SdxlKitError("PhotoMaker: the prompt holds CLIP's end-of-text token; remove it")
    return len(chunks) * CHUNK_LENGTH, [positions[i] for i in split.copies]


def encode_identity_prompts(tokenizers, text_encoders, encoder, pixel_values, prompt: str, negative: str | None, *,
                            clip_skip: int, weighting: str | None, guidance: bool):
    """IdentityEmbeds: the text-only prompt with the identity prompt beside it, the negative shared; the identity
    prompt's class-token copies fused with the photos (pixel_values [photos, 3, 224, 224]), in photo order. All are
    repeated to a common length (prompts.alignment), the identity prompt fused before it is repeated."""
    import torch

    if weighting == "compel":
        raise SdxlKitError("PhotoMaker works on the prompt's tokens: use plain or sdEmbeds weighting, not compel")
    photos = pixel_values.shape[0]
    split = [_split(tok, tokenized(tok, parser(weighting)(prompt)), photos) for tok in tokenizers]
    (length, positions), second = (_copy_positions(tok, s, weighting) for tok, s in zip(tokenizers, split))
    if (length, positions) != second:
        raise SdxlKitError("PhotoMaker: the two tokenizers place the class word differently")
    text_only = encode_prompts(tokenizers, text_encoders, TokenPrompt(prompt, [s.text_only for s in split]), negative,
                               clip_skip=clip_skip, weighting=weighting, guidance=guidance)
    identity = encode_prompts(tokenizers, text_encoders, TokenPrompt(prompt, [s.identity for s in split]), None,
                              clip_skip=clip_skip, weighting=weighting, guidance=False)
    embeds = identity.prompt_embeds
    mask = torch.zeros(length, dtype=torch.bool)
    mask[positions] = True
    with torch.no_grad():
        fused = encoder(pixel_values.to(embeds.device), embeds, mask.to(embeds.device))
    negatives = () if text_only.negative_prompt_embeds is None else (
        unpadded(text_only.negative_prompt_embeds, text_only.negative_mask),)
    plain, fused, *negatives = repeat_to_common_length(unpadded(text_only.prompt_embeds, text_only.prompt_mask),
                                                       fused, *negatives)
    negative_embeds = negatives[0] if negatives else None
    return IdentityEmbeds(plain, text_only.pooled_prompt_embeds, negative_embeds,
                          text_only.negative_pooled_prompt_embeds,
                          identity=PromptEmbeds(fused, identity.pooled_prompt_embeds, negative_embeds,
                                                text_only.negative_pooled_prompt_embeds))
