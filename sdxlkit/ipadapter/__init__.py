"""IP-Adapter for SDXL with cubiq's (ComfyUI_IPAdapter_plus) semantics: weight types per block, combine methods,
embed scalings, base and Plus architectures; see weights.py for the math and part.py for how it acts on the UNet."""

from .part import IPAdapterPart
from .prepare import ADAPTERS, ENCODERS, ENCODINGS, IPAdapterRequest, adapter_uses

__all__ = ["ADAPTERS", "ENCODERS", "ENCODINGS", "IPAdapterPart", "IPAdapterRequest", "adapter_uses"]
