"""LoRA stacks on SDXL: kohya/A1111, diffusers and LyCORIS files, resident adapters switched by weight."""

from .adapters import apply_loras
from .files import LORA_FILES, EmbeddedLora, LoraFileCache

__all__ = ["apply_loras", "EmbeddedLora", "LORA_FILES", "LoraFileCache"]
