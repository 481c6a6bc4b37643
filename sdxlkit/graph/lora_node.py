"""The SDXLKit_LoraStack node's widgets and the task's lora[] entry they stand for (one node = one entry)."""

from __future__ import annotations

from ..task import schema

NODE_ID = "SDXLKit_LoraStack"
STACK_TYPE = "SDXLKIT_LORA_STACK"
WIDGETS = ("lora_name", "weight", "transformer")


def entry_from_widgets(values: dict, model: str) -> dict:
    """`weight` is always written; `transformer` only when it is not the default ("both")."""
    entry = {"model": model, "weight": values["weight"]}
    if values["transformer"] != schema.default("lora[].transformer"):
        entry["transformer"] = values["transformer"]
    return entry


def widgets_from_entry(entry: dict) -> dict:
    """Widget values except lora_name (the model reference becomes a file name where the models folder is known)."""
    return {"weight": entry.get("weight", schema.default("lora[].weight")),
            "transformer": entry.get("transformer", schema.default("lora[].transformer"))}
