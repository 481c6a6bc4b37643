"""PhotoMaker V1 (TencentARC): identity from 1-4 face photos through the trigger word, the UNet LoRA of the
PhotoMaker file, delayed merging and the style templates. Modules: files (reading), encoder (the ID encoder),
prompt (trigger word, the two prompts), part (the step switch), styles. Importing this package does not import
torch."""

from .files import DEFAULT_REFERENCE, read_photomaker
from .styles import STYLES, apply_style

__all__ = ["DEFAULT_REFERENCE", "STYLES", "apply_style", "read_photomaker"]
