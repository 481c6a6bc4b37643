"""The SDXLKit_PhotoMaker node's widgets and the task's photoMaker object they stand for (its photos come in as an
IMAGE batch). Defaults (strength 15, "No style") are not written."""

from __future__ import annotations

from ..task import schema

NODE_ID = "SDXLKit_PhotoMaker"
TYPE = "SDXLKIT_PHOTOMAKER"
WIDGETS = ("strength", "style")


def entry_from_widgets(values: dict, images: list[str]) -> dict:
    entry: dict = {"images": list(images)}
    for name in WIDGETS:
        if values[name] != schema.default(f"photoMaker.{name}"):
            entry[name] = values[name]
    return entry


def widgets_from_entry(entry: dict) -> dict:
    return {name: entry.get(name, schema.default(f"photoMaker.{name}")) for name in WIDGETS}
