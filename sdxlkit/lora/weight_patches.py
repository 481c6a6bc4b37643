"""The weight change of one layer from a kohya/LyCORIS file, as ComfyUI computes it (comfy/weight_adapter: lora.py,
loha.py, lokr.py, base.weight_decompose; comfy/lora.py for "diff"): LoRA/LoCon (with its Tucker mid weight), LoHa,
LoKr, full differences, and DoRA's weight decomposition on the first three. Everything is computed in float32."""

from __future__ import annotations

from dataclasses import dataclass

import torch

_TUCKER = "i j k l, j r, i p -> p r k l"


def _mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a.flatten(start_dim=1) @ b.flatten(start_dim=1)


def _kron(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """torch.kron for tensors of equal rank, in ops meta tensors support (shape checks run on meta)."""
    product = a.reshape([s for d in a.shape for s in (d, 1)]) * b.reshape([s for d in b.shape for s in (1, d)])
    return product.reshape([x * y for x, y in zip(a.shape, b.shape)])


def _lora(t: dict) -> tuple[torch.Tensor, int]:
    up, down, mid = t["lora_up.weight"], t["lora_down.weight"], t.get("lora_mid.weight")
    rank = down.shape[0]
    if mid is not None:  # LoCon's Tucker form: down is 1x1, mid holds the kernel
        shape = [down.shape[1], down.shape[0], mid.shape[2], mid.shape[3]]
        down = _mm(down.transpose(0, 1), mid.transpose(0, 1)).reshape(shape).transpose(0, 1)
    return _mm(up, down), rank


def _loha(t: dict) -> tuple[torch.Tensor, int]:
    w1a, w1b, w2a, w2b = t["hada_w1_a"], t["hada_w1_b"], t["hada_w2_a"], t["hada_w2_b"]
    if "hada_t1" in t:
        m1 = torch.einsum(_TUCKER, t["hada_t1"], w1b, w1a)
        m2 = torch.einsum(_TUCKER, t["hada_t2"], w2b, w2a)
    else:
        m1, m2 = w1a @ w1b, w2a @ w2b
    return m1 * m2, w1b.shape[0]


def _lokr(t: dict) -> tuple[torch.Tensor, int | None]:
    rank = None
    w1 = t.get("lokr_w1")
    if w1 is None:
        rank = t["lokr_w1_b"].shape[0]
        w1 = t["lokr_w1_a"] @ t["lokr_w1_b"]
    w2 = t.get("lokr_w2")
    if w2 is None:
        rank = t["lokr_w2_b"].shape[0]
        w2 = (torch.einsum(_TUCKER, t["lokr_t2"], t["lokr_w2_b"], t["lokr_w2_a"]) if "lokr_t2" in t
              else t["lokr_w2_a"] @ t["lokr_w2_b"])
    if w2.dim() == 4:
        w1 = w1[:, :, None, None]
    return _kron(w1, w2), rank


_PRODUCTS = {"lora": _lora, "loha": _loha, "lokr": _lokr}


def decompose(dora_scale: torch.Tensor, weight: torch.Tensor, change: torch.Tensor, strength: float) -> torch.Tensor:
    """DoRA as ComfyUI's weight_decompose: the changed weight rescaled to the file's magnitudes, norms taken per
    output row of the current weight when the magnitudes run along the output axis, else per input column of the
    changed weight; `strength` interpolates between the current weight and that result."""
    changed = weight + change
    if dora_scale.shape[0] == changed.shape[0]:
        norm = weight.reshape(weight.shape[0], -1).norm(dim=1, keepdim=True)
        norm = norm.reshape(weight.shape[0], *[1] * (weight.dim() - 1))
    else:
        flat = changed.transpose(0, 1).reshape(changed.shape[1], -1).norm(dim=1, keepdim=True)
        norm = flat.reshape(changed.shape[1], *[1] * (changed.dim() - 1)).transpose(0, 1)
    changed = changed * (dora_scale / (norm + torch.finfo(weight.dtype).eps))
    return changed if strength == 1.0 else weight + strength * (changed - weight)


@dataclass(frozen=True)
class WeightPatch:
    """One layer parameter's change: `kind` is "lora", "loha", "lokr" or "diff"; `tensors` are the file's
    tensors by suffix (e.g. "hada_w1_a"); `alpha` the file's alpha (None: no scaling)."""

    kind: str
    tensors: dict
    alpha: float | None = None
    dora_scale: torch.Tensor | None = None

    def _product(self, device) -> tuple[torch.Tensor, float]:
        tensors = {k: v.to(device, torch.float32) for k, v in self.tensors.items()}
        if self.kind == "diff":
            return tensors["diff"], 1.0
        product, rank = _PRODUCTS[self.kind](tensors)
        return product, (self.alpha / rank if self.alpha is not None and rank is not None else 1.0)

    def shape_numel(self) -> int:
        """Elements of the change, computed without data (meta tensors): it must fill the layer's parameter."""
        meta = WeightPatch(self.kind, {k: torch.empty(v.shape, device="meta") for k, v in self.tensors.items()})
        return meta._product("meta")[0].numel()

    def apply(self, merged: torch.Tensor, strength: float) -> None:
        """merged (float32, the layer's parameter so far) becomes the patched parameter, in place."""
        product, scale = self._product(merged.device)
        change = product.reshape(merged.shape)
        if self.dora_scale is None:
            merged += (strength * scale) * change
        else:
            dora_scale = self.dora_scale.to(merged.device, torch.float32)
            merged.copy_(decompose(dora_scale, merged, change * scale, strength))
