"""The imageInference JSON schema shipped with the package: the single source of every field's range and default."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "spec" / "imageInference.schema.json"
CANONICAL_MODEL_ID = "civitai:101055@128078"


@lru_cache(maxsize=1)
def vendor_schema() -> dict:
    """The schema exactly as the cloud API describes it."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def local_schema() -> dict:
    """The schema for local runs: `model` (and a ControlNet's `model`) may also be a local reference: a file name,
    a path, a diffusers folder, or an id mapped in the models folder.

    Which references exist is checked when the model is resolved, before anything is loaded.
    """
    schema = copy.deepcopy(vendor_schema())
    for model in (schema["properties"]["model"], schema["properties"]["controlNet"]["items"]["properties"]["model"]):
        model.pop("const", None)
        model.pop("enum", None)
        model["type"] = "string"
        model["minLength"] = 1
    return schema


def field(path: str) -> dict:
    """The sub-schema of a dotted field path: "width", "outpaint.blur", "lora[].weight"."""
    node: Any = local_schema()
    for part in path.split("."):
        is_item = part.endswith("[]")
        node = node["properties"][part.removesuffix("[]")]
        if is_item:
            node = node["items"]
    return node


def default(path: str) -> Any:
    return field(path).get("default")


def enum(path: str) -> list:
    return list(field(path)["enum"])
