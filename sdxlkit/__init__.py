"""sdxlkit: an SDXL engine (diffusers + torch) behind the sdxlkit ComfyUI node pack.

Importing this package is cheap: torch, diffusers and transformers are imported where they are used.
"""

__version__ = "0.1.0"
