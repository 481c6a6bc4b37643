"""Positive and negative conditioning of different lengths brought to one length.

diffusers runs the two classifier-free-guidance branches as one batch, so both need the same number of tokens.
While the least common multiple of the two lengths is at most twice the longer, each is repeated along the token
axis to it (ComfyUI's ``CONDCrossAttn.concat``). That is neutral for cross-attention: with a key/value sequence
repeated k times every key has k copies with the same score, so each softmax weight is divided by k and each value
is summed k times -- the same output.

Past that the repetition costs more than it is worth (a 41-chunk prompt beside a 27-chunk negative would attend to
1107 chunks), so each is padded with zeros to the longer and the padding is masked out of cross-attention
(``encoder_attention_mask``, see ``sampling.token_mask``): a masked key gets exactly zero weight, so again the same
output, at the longer one's cost. ComfyUI runs the two branches as separate batches once its repetition would pass
4x the shorter; A1111 runs them separately whenever the lengths differ. (Padding with empty-prompt chunks, another
common choice, adds keys and changes the result.)
"""

from __future__ import annotations

import math

MAX_REPEAT_GROWTH = 2  # the repeated length, at most this many times the longer one


def repeat_to_common_length(*tensors):
    """The ``tensors`` ([B, L, D]) each repeated along L to the least common multiple of their lengths."""
    length = math.lcm(*(t.shape[1] for t in tensors))
    return tuple(t.repeat(1, length // t.shape[1], 1) for t in tensors)


def aligned(positive, negative):
    """(positive, negative, positive_mask, negative_mask) of one length: repeated to their least common multiple
    with no masks, or past MAX_REPEAT_GROWTH zero-padded to the longer with [1, L] masks of their own tokens."""
    import torch

    lengths = positive.shape[1], negative.shape[1]
    longest = max(lengths)
    if math.lcm(*lengths) <= MAX_REPEAT_GROWTH * longest:
        return (*repeat_to_common_length(positive, negative), None, None)
    padded = [torch.nn.functional.pad(t, (0, 0, 0, longest - t.shape[1])) for t in (positive, negative)]
    masks = [(torch.arange(longest, device=t.device) < t.shape[1])[None] for t in (positive, negative)]
    return (*padded, *masks)


def unpadded(embeds, mask):
    """``embeds`` [1, L, D] without the padding ``aligned`` added (all of it when ``mask`` is None)."""
    return embeds if mask is None else embeds[:, : int(mask.sum())]
