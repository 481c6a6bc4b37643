"""The SDXLKit_Refiner node's widgets and the task's `refiner` object they stand for.

`start` is the step where the refiner takes over, as an absolute step or a percentage of the steps (`start_unit`);
percent 80, the engine's default hand-off, is not written.
"""

from __future__ import annotations

from ..refiner.switch import DEFAULT_SWITCH_PERCENT

NODE_ID = "SDXLKit_Refiner"
SOCKET_TYPE = "SDXLKIT_REFINER"
UNITS = ("percent", "step")


def entry_from_widgets(values: dict, model: str) -> dict:
    entry = {"model": model}
    if values["start_unit"] == "step":
        entry["startStep"] = values["start"]
    elif values["start"] != DEFAULT_SWITCH_PERCENT:
        entry["startStepPercentage"] = values["start"]
    return entry


def widgets_from_entry(entry: dict) -> dict:
    """Widget values except ckpt_name."""
    if "startStep" in entry:
        return {"start": entry["startStep"], "start_unit": "step"}
    return {"start": entry.get("startStepPercentage", DEFAULT_SWITCH_PERCENT), "start_unit": "percent"}
