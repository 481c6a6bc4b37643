"""Which dtype each part of the model computes in.

auto: float32 on CPU (half-precision matmuls are ~100x slower on CPUs without bf16 units); on CUDA bfloat16 when the
GPU supports it, else float32. The VAE follows the model, except that float16 is used for it only when the VAE is
known to be fp16-safe (e.g. madebyollin's sdxl-vae-fp16-fix): the SDXL VAE overflows float16 and decodes black.
A forced precision applies to everything; the NaN guard in sdxlkit.vae still redoes a bad decode in float32.
"""

from __future__ import annotations

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def fp16_safe(vae_config: dict) -> bool:
    """A VAE is known to be fp16-safe when its config says it needs no upcast (as sdxl-vae-fp16-fix's does)."""
    return vae_config.get("force_upcast", True) is False


def resolve_dtypes(precision: str, device: str, vae_fp16_safe: bool):
    """Return (model_dtype, vae_dtype) as torch dtypes."""
    import torch

    if precision not in PRECISIONS:
        from ..errors import SdxlKitError

        raise SdxlKitError(f"precision must be one of {', '.join(PRECISIONS)} (got {precision!r})")
    forced = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision in forced:
        return forced[precision], forced[precision]
    if not str(device).startswith("cuda"):
        return torch.float32, torch.float32
    model = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    vae = torch.float16 if vae_fp16_safe else model
    return model, vae
