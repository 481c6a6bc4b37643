"""The loaded parts of an SDXL model, as one object the sampler and the VAE guard work on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .lru import LruCache
from .residency import Residency

EMBEDS_KEPT = 8


@dataclass
class SDXLComponents:
    unet: Any
    vae: Any
    text_encoder: Any
    text_encoder_2: Any
    tokenizer: Any
    tokenizer_2: Any
    scheduler_config: dict
    source: str
    vae_fp16_safe: bool = False
    device: str = "cpu"
    role: str = "base"  # "refiner": no CLIP-L (text_encoder/tokenizer None), UNet conditioned on an aesthetic score
    compiled: bool = False  # the UNet's blocks are compiled (compile.py)
    # where the parts live between uses; by default (components assembled by hand) all stay where they are
    residency: Residency | None = None
    # float32 twin of the VAE, made on first need by the NaN guard
    vae_fp32: Any = field(default=None, repr=False)
    # LoRA adapters resident in unet/text encoders (sdxlkit.lora.adapters.ResidentLoras), made on first need
    lora_state: Any = field(default=None, repr=False)
    # the prompt embeddings of the last prompts encoded (generate.prompt_embeds)
    embeds_cache: Any = field(default_factory=lambda: LruCache(EMBEDS_KEPT), repr=False)

    def __post_init__(self):
        if self.residency is None:
            self.residency = Residency(self.device, "auto")

    def replays_graphs(self) -> bool:
        """Compiled mode on a GPU also replays each pass's UNet forward from a CUDA graph (sampling/cuda_graph.py)."""
        return self.compiled and str(self.device).startswith("cuda")

    @property
    def dtype(self):
        return self.unet.dtype

    def text_encoders(self) -> tuple:
        """The prompt encoders in SDXL's order (CLIP-L, bigG); the refiner has bigG only."""
        return tuple(e for e in (self.text_encoder, self.text_encoder_2) if e is not None)

    def tokenizers(self) -> tuple:
        return tuple(t for t, e in ((self.tokenizer, self.text_encoder), (self.tokenizer_2, self.text_encoder_2))
                     if e is not None)

    def modules(self) -> dict:
        return {"unet": self.unet, "vae": self.vae, "text_encoder": self.text_encoder,
                "text_encoder_2": self.text_encoder_2, "tokenizer": self.tokenizer, "tokenizer_2": self.tokenizer_2}
