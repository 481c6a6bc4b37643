"""kohya-named LyCORIS files parsed into weight patches per layer: `<layer>.<suffix>` keys grouped by layer, each
group recognised as one LyCORIS module type."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelLoadError
from .weight_patches import WeightPatch

# module type -> (suffixes it needs, suffixes it may have besides alpha and dora_scale); one layer has one type
_TYPES = {
    "lora": ({"lora_up.weight", "lora_down.weight"}, {"lora_mid.weight"}),
    "loha": ({"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"}, {"hada_t1", "hada_t2"}),
    "lokr": (set(), {"lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2"}),
    "diff": ({"diff"}, {"diff_b"}),
    "norm": ({"w_norm"}, {"b_norm"}),
}
_COMMON = {"alpha", "dora_scale"}
_DIFF_KEYS = {"diff": ("diff", "diff_b"), "norm": ("w_norm", "b_norm")}  # (weight key, bias key)
# (suffixes that must come together) for LoKr's optional factors
_LOKR_PAIRS = ((("lokr_w1",), ("lokr_w1_a", "lokr_w1_b")), (("lokr_w2",), ("lokr_w2_a", "lokr_w2_b")))


@dataclass(frozen=True)
class PatchFile:
    """A LyCORIS file: kohya layer name -> {"weight" or "bias": its patch}."""

    path: Path
    patches: dict[str, dict[str, WeightPatch]]

    @property
    def name(self) -> str:
        return self.path.name


def _kind(file: str, layer: str, suffixes: set[str]) -> str:
    found = [kind for kind, (needed, optional) in _TYPES.items() if suffixes & (needed | optional)]
    if len(found) != 1:
        what = f"parts of {' and '.join(found)}" if found else "no weights"
        raise ModelLoadError(f"{file}: layer {layer} has {what} ({', '.join(sorted(suffixes))})")
    kind = found[0]
    needed, optional = _TYPES[kind]
    unknown = suffixes - needed - optional - _COMMON
    missing = needed - suffixes
    if kind == "lokr":
        missing |= {" or ".join(a + b) for a, b in _LOKR_PAIRS if not (set(a) <= suffixes or set(b) <= suffixes)}
    if unknown or missing:
        problem = f"unknown keys {', '.join(sorted(unknown))}" if unknown else f"missing {', '.join(sorted(missing))}"
        raise ModelLoadError(f"{file}: {kind} layer {layer}: {problem}")
    return kind


def _group_patches(file: str, layer: str, group: dict) -> dict[str, WeightPatch]:
    kind = _kind(file, layer, set(group))
    if kind in _DIFF_KEYS:
        weight_key, bias_key = _DIFF_KEYS[kind]
        patches = {"weight": WeightPatch("diff", {"diff": group[weight_key]})}
        if bias_key in group:
            patches["bias"] = WeightPatch("diff", {"diff": group[bias_key]})
        return patches
    alpha = float(group["alpha"].item()) if "alpha" in group else None
    tensors = {k: v for k, v in group.items() if k not in _COMMON}
    return {"weight": WeightPatch(kind, tensors, alpha, group.get("dora_scale"))}


def layer_patches(file: str, tensors: dict) -> dict[str, dict[str, WeightPatch]]:
    """Patches by layer; a layer with an alpha and nothing else (left by resize and block-filter tools) is skipped."""
    groups: dict[str, dict] = {}
    for key, tensor in tensors.items():
        layer, _, suffix = key.partition(".")
        groups.setdefault(layer, {})[suffix] = tensor
    return {layer: _group_patches(file, layer, group) for layer, group in groups.items() if set(group) != {"alpha"}}
