"""cubiq's IP-Adapter math (ComfyUI_IPAdapter_plus, IPAdapterPlus.ipadapter_execute and
CrossAttentionPatch.ipadapter_attention): per-block weights of the weight types, how several guide images are
combined, and how the weight scales the image keys/values.

Blocks are cubiq's (ComfyUI's) `transformer_index` t: one per SDXL transformer stack, t0-t3 input (down_blocks.1/2),
t4 middle, t5-t10 output (up_blocks.0/1); t3 is the composition block, t6 the style block.
"""

from __future__ import annotations

import torch

LAYERS = 11  # SDXL's transformer stacks, cubiq's `layers` for SDXL
COMPOSITION_BLOCK, STYLE_BLOCK = 3, 6
C_PENALTY_WIDTH = 1280.0  # cubiq's "C penalty" divides a block's width by this

WEIGHT_TYPES = ("normal", "ease_in", "ease_out", "ease_in_out", "weak_input", "weak_output", "weak_middle",
                "strong_middle", "style_transfer", "composition", "strong_style_transfer", "style_and_composition",
                "strong_style_and_composition")
COMBINE_METHODS = ("concat", "add", "subtract", "average", "norm_average")
EMBED_SCALINGS = ("only_v", "kv", "kv_penalty_c", "k_mean_v_penalty_c")
# cubiq's names, for messages and the README
CUBIQ_NAMES = {"normal": "linear", "norm_average": "norm average", "only_v": "V only", "kv": "K+V",
               "kv_penalty_c": "K+V w/ C penalty", "k_mean_v_penalty_c": "K+mean(V) w/ C penalty"}


def block_kind(t: int) -> str:
    return "input" if t < 4 else "middle" if t == 4 else "output"


def _profile(weight_type: str, weight: float, t: int) -> float:
    """cubiq's per-block weight for the profile types (every block gets a weight)."""
    half = LAYERS / 2
    kind = block_kind(t)
    if weight_type == "ease_in":
        return weight * (0.05 + 0.95 * (1 - t / LAYERS))
    if weight_type == "ease_out":
        return weight * (0.05 + 0.95 * (t / LAYERS))
    if weight_type == "ease_in_out":
        return weight * (0.05 + 0.95 * (1 - abs(t - half) / half))
    weak = {"weak_input": ("input",), "weak_middle": ("middle",), "weak_output": ("output",),
            "strong_middle": ("input", "output")}.get(weight_type, ())
    return weight * 0.2 if kind in weak else weight


def block_weights(weight_type: str, weight: float, weight_composition: float = 1.0) -> dict[int, float]:
    """Weight of each block t (blocks absent or at 0 are skipped: the base attention output is left exactly as it
    is). `weight_composition` is cubiq's absolute t3 weight of the style-and-composition types (default 1.0)."""
    if weight_type not in WEIGHT_TYPES:
        raise ValueError(f"weightType {weight_type!r}; allowed: {', '.join(WEIGHT_TYPES)}")
    if weight_type == "style_transfer":
        weights = {STYLE_BLOCK: weight}
    elif weight_type == "composition":
        weights = {COMPOSITION_BLOCK: weight}
    elif weight_type == "strong_style_transfer":
        weights = {t: weight for t in range(LAYERS) if t != COMPOSITION_BLOCK}
    elif weight_type == "style_and_composition":
        weights = {COMPOSITION_BLOCK: weight_composition, STYLE_BLOCK: weight}
    elif weight_type == "strong_style_and_composition":
        weights = {t: weight for t in range(LAYERS)} | {COMPOSITION_BLOCK: weight_composition}
    else:
        weights = {t: _profile(weight_type, weight, t) for t in range(LAYERS)}
    return {t: w for t, w in weights.items() if w != 0}


def combine(embeds: torch.Tensor, method: str) -> torch.Tensor:
    """Several guide images' CLIP embeddings [N, ...] merged as cubiq does before the projection. concat keeps all N
    (their tokens are concatenated after the projection); the others give one."""
    if method not in COMBINE_METHODS:
        raise ValueError(f"combineMethod {method!r}; allowed: {', '.join(COMBINE_METHODS)}")
    if method == "concat" or embeds.shape[0] == 1:
        return embeds
    if method == "add":
        return embeds.sum(dim=0, keepdim=True)
    if method == "subtract":
        return (embeds[0] - embeds[1:].mean(dim=0))[None]
    if method == "average":
        return embeds.mean(dim=0, keepdim=True)
    return (embeds / torch.norm(embeds, dim=0, keepdim=True)).mean(dim=0, keepdim=True)  # norm over the images


def scaled_kv(k: torch.Tensor, v: torch.Tensor, weight: float, scaling: str) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(K, V, output factor) for the image attention of one block: out_ip = Attn(q, K, V) * factor. k, v are
    [batch, tokens, C] with C the block's width (640 or 1280 on SDXL)."""
    if scaling == "only_v":
        return k, v, weight
    if scaling in ("kv_penalty_c", "k_mean_v_penalty_c"):
        weight = weight * k.shape[2] / C_PENALTY_WIDTH
    if scaling == "k_mean_v_penalty_c":
        mean = v.mean(dim=1, keepdim=True)
        return k * weight, (v - mean) + mean * weight, 1.0
    if scaling in ("kv", "kv_penalty_c"):
        return k * weight, v * weight, 1.0
    raise ValueError(f"embedScaling {scaling!r}; allowed: {', '.join(EMBED_SCALINGS)}")
