"""LoRA stacks on SDXL: kohya/A1111, diffusers and LyCORIS files, resident adapters switched by weight."""

from .adapters import apply_loras, base_state_dict
from .files import LORA_FILES, EmbeddedLora, LoraFileCache

__all__ = ["apply_loras", "base_state_dict", "EmbeddedLora", "LORA_FILES", "LoraFileCache"]
