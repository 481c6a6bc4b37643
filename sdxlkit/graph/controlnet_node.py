"""The SDXLKit_ControlNet node's widgets and the task's controlNet[] entry they stand for (one node = one entry).

A window end is either an absolute step or a percentage of the steps, as in the task; `start_unit`/`end_unit` say
which. Percent 0 (start) and 100 (end) are the defaults and are not written.
"""

from __future__ import annotations

from ..task import schema

NODE_ID = "SDXLKit_ControlNet"
STACK_TYPE = "SDXLKIT_CONTROL_STACK"
WIDGETS = ("control_net_name", "weight", "control_mode", "start", "start_unit", "end", "end_unit")
UNITS = ("percent", "step")
FULL_RANGE = {"start": 0, "end": 100}
_FIELDS = {("start", "step"): "startStep", ("start", "percent"): "startStepPercentage",
           ("end", "step"): "endStep", ("end", "percent"): "endStepPercentage"}


def entry_from_widgets(values: dict, model: str, guide_image: str) -> dict:
    entry = {"model": model, "guideImage": guide_image, "weight": values["weight"]}
    if values["control_mode"] != schema.default("controlNet[].controlMode"):
        entry["controlMode"] = values["control_mode"]
    for side in ("start", "end"):
        unit = values[f"{side}_unit"]
        if unit == "step" or values[side] != FULL_RANGE[side]:
            entry[_FIELDS[side, unit]] = values[side]
    return entry


def widgets_from_entry(entry: dict) -> dict:
    """Widget values except control_net_name; the guide image is an input, not a widget."""
    values = {"weight": entry.get("weight", schema.default("controlNet[].weight")),
              "control_mode": entry.get("controlMode", schema.default("controlNet[].controlMode"))}
    for side in ("start", "end"):
        unit = "step" if _FIELDS[side, "step"] in entry else "percent"
        values[side] = entry.get(_FIELDS[side, unit], FULL_RANGE[side])
        values[f"{side}_unit"] = unit
    return values
