"""The pack's nodes, registered through ComfyExtension (see the root __init__.py)."""

from ..sdxlkit.controlnet import CONTROLNETS
from ..sdxlkit.embeddings import EMBEDDING_FILES
from ..sdxlkit.faces.yolo import DETECTORS
from ..sdxlkit.ipadapter import ADAPTERS, ENCODERS, ENCODINGS
from ..sdxlkit.loading.cache import MODEL_CACHE, REFINER_CACHE
from ..sdxlkit.lora import LORA_FILES
from ..sdxlkit.photomaker.encoder import ID_ENCODERS
from ..sdxlkit.safety import SAFETY_CHECKERS
from ..sdxlkit.upscale import UPSCALERS
from . import convert_route, host, task_route
from ._api import ComfyExtension, io
from .embeddings import SDXLKitEmbeddings
from .inference import SDXLKitImageInference, SDXLKitInference
from .ip_adapter import SDXLKitIPAdapter
from .loader import SDXLKitLoader
from .options import OPTION_NODE_CLASSES
from .photomaker import SDXLKitPhotoMaker
from .post_passes import SDXLKitFaceDetailer, SDXLKitHiresFix
from .refiner import SDXLKitRefiner
from .save import SDXLKitSave
from .stacks import SDXLKitControlNet, SDXLKitLoraStack
from .task_export import SDXLKitTaskExport

NODES: list[type[io.ComfyNode]] = [SDXLKitLoader, SDXLKitLoraStack, SDXLKitControlNet, SDXLKitIPAdapter, SDXLKitRefiner,
                                   SDXLKitEmbeddings, SDXLKitImageInference, *OPTION_NODE_CLASSES, SDXLKitPhotoMaker,
                                   SDXLKitHiresFix, SDXLKitFaceDetailer, SDXLKitSave, SDXLKitTaskExport, SDXLKitInference]


def release_engine_models() -> int:
    """Drop every model the engine keeps loaded or parsed; returns how many SDXL models were dropped."""
    CONTROLNETS.release()
    for cache in (ADAPTERS, ENCODERS, ENCODINGS, UPSCALERS, DETECTORS, ID_ENCODERS):
        cache.release()
    LORA_FILES.release()
    EMBEDDING_FILES.release()
    SAFETY_CHECKERS.release()
    return MODEL_CACHE.release() + REFINER_CACHE.release()


class SdxlKitExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        host.release_models_with_comfy(release_engine_models)
        host.add_routes(task_route.register, convert_route.register)
        return NODES
