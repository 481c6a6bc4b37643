"""Every node type the conversion knows, by class_type. A new node type adds its module here; a new part (a node
feeding an optional input of SDXL Inference) is listed by inference.PARTS instead."""

from __future__ import annotations

from ..mapping import NodeMapping
from . import controlnet, image_batch, inference, load_image, loader, lora, save

MAPPINGS: dict[str, NodeMapping] = {m.class_type: m for m in (
    loader.MAPPING, load_image.IMAGE_MAPPING, load_image.MASK_MAPPING, image_batch.MAPPING, lora.MAPPING,
    controlnet.MAPPING, inference.MAPPING, inference.LEGACY_MAPPING, save.MAPPING, *(p.mapping for p in inference.PARTS),
)}
