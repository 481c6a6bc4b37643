"""Positive and negative conditioning of different lengths brought to one length, as ComfyUI does it.

diffusers runs the two classifier-free-guidance branches as one batch, so both need the same number of tokens.
Each is repeated along the token axis to the least common multiple of the two lengths (ComfyUI's
``CONDCrossAttn.concat``). That is neutral for cross-attention: with a key/value sequence repeated k times every key
has k copies with the same score, so each softmax weight is divided by k and each value is summed k times -- the
same output. (Padding with empty-prompt chunks, the other common choice, adds keys and changes the result.)
"""

from __future__ import annotations

import math


def repeat_to_common_length(*tensors):
    """The ``tensors`` ([B, L, D]) each repeated along L to the least common multiple of their lengths."""
    length = math.lcm(*(t.shape[1] for t in tensors))
    return tuple(t.repeat(1, length // t.shape[1], 1) for t in tensors)
