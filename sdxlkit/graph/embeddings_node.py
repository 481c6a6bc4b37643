"""The SDXLKit_Embeddings node's widgets and the task's embeddings[] entry they stand for (one node = one entry)."""

from __future__ import annotations

from ..task import schema

NODE_ID = "SDXLKit_Embeddings"
STACK_TYPE = "SDXLKIT_EMBEDDING_STACK"


def entry_from_widgets(values: dict, model: str) -> dict:
    return {"model": model, "weight": values["weight"]}


def widgets_from_entry(entry: dict) -> dict:
    """Widget values except embedding_name."""
    return {"weight": entry.get("weight", schema.default("embeddings[].weight"))}
