"""The SDXLKit_IPAdapter node's widgets and the task's ipAdapters[] entry they stand for (one node = one entry).

The entry names the adapter only; its CLIP vision encoder follows from the id (registry.IMAGE_ENCODERS), so the
node's clip_vision_name is not written into the task and is set to the id's encoder file when a task becomes a graph.
`weight` is always written, the options only when they differ from their defaults (weightComposition: cubiq's 1.0).
"""

from __future__ import annotations

from ..task import schema

NODE_ID = "SDXLKit_IPAdapter"
STACK_TYPE = "SDXLKIT_IPADAPTER_STACK"
IMAGE_INPUTS = ("image", "image_2", "image_3", "image_4")  # guide images, in order; each may be a batch
WEIGHT_COMPOSITION_DEFAULT = 1.0
_OPTIONS = {"weight_type": "weightType", "combine_method": "combineMethod", "embed_scaling": "embedScaling"}


def entry_from_widgets(values: dict, model: str, guide_images: list[str]) -> dict:
    entry = {"model": model, "guideImages": list(guide_images), "weight": values["weight"]}
    for widget, field in _OPTIONS.items():
        if values[widget] != schema.default(f"ipAdapters[].{field}"):
            entry[field] = values[widget]
    if values["weight_composition"] != WEIGHT_COMPOSITION_DEFAULT:
        entry["weightComposition"] = values["weight_composition"]
    return entry


def widgets_from_entry(entry: dict) -> dict:
    """Widget values except the two file names; the guide images are inputs, not widgets."""
    values = {"weight": entry.get("weight", schema.default("ipAdapters[].weight")),
              "weight_composition": entry.get("weightComposition", WEIGHT_COMPOSITION_DEFAULT)}
    return values | {widget: entry.get(field, schema.default(f"ipAdapters[].{field}")) for widget, field in _OPTIONS.items()}
