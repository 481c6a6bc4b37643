"""Custom socket types of the pack."""

from ._api import io

SdxlModel = io.Custom("SDXLKIT_MODEL")
