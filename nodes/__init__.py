"""The pack's nodes, registered through ComfyExtension (see the root __init__.py)."""

from ..sdxlkit.loading.cache import MODEL_CACHE
from . import host
from ._api import ComfyExtension, io
from .inference import SDXLKitInference
from .loader import SDXLKitLoader
from .save import SDXLKitSave

NODES: list[type[io.ComfyNode]] = [SDXLKitLoader, SDXLKitInference, SDXLKitSave]


class SdxlKitExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        host.release_models_with_comfy(MODEL_CACHE.release)
        return NODES
