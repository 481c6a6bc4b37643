"""Token weights applied to encoder hidden states, the way sd_embed does it for SDXL.

sd_embed's ``get_weighted_text_embeddings_sdxl`` (xhinker/sd_embed, src/sd_embed/embedding_funcs.py, "add weight
method 3", the only one not commented out) multiplies each token's embedding by its weight:
``z[j] = z[j] * w[j]`` on the concatenated CLIP-L + bigG hidden states, with no mean renormalisation (A1111) and
no lerp from the empty prompt (ComfyUI, compel). The product is per position and per feature, so doing it per
encoder before concatenation is the same. Tokens of weight 1.0 (BOS, EOS, padding, unweighted text) are left
untouched bit for bit.

One deliberate difference: sd_embed stores weights as float16 (1.1 -> 1.0996); here they are exact, and the
product is computed in float32 and cast back to the hidden states' dtype.
"""

from __future__ import annotations


def apply_token_weights(hidden, weights):
    """``hidden`` [B, L, D] (or [L, D]) scaled by ``weights`` (L floats) along the token axis: ``z * w``."""
    import torch

    w = torch.tensor(weights, dtype=torch.float32, device=hidden.device)
    keep = w == 1.0
    if bool(keep.all()):
        return hidden
    scaled = (hidden.float() * w[:, None]).to(hidden.dtype)
    return torch.where(keep[:, None], hidden, scaled)
