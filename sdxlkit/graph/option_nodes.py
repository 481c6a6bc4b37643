"""Option nodes: small nodes whose widgets each edit one task field, wired into an optional input of the
SDXL Inference node (img2img strength, inpaint and outpaint options, delivery, safety, the accelerator cache). A graph without one is a
task without its fields, so a txt2img graph shows none of them.

Kept in the engine because both the ComfyUI nodes (nodes/options.py) and the graph <-> task conversion
(graph/mappings/options.py) read these specs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..task import schema


@dataclass(frozen=True)
class OptionWidget:
    """`path`: the task field (dots for nested); `unset`: the widget value that writes nothing (None: always
    written); `minimum`: where the widget must also hold `unset`, below the schema's minimum."""

    name: str
    path: str
    unset: Any = None
    minimum: int | None = None
    tooltip: str = ""

    @property
    def default(self) -> Any:
        """What the node's widget shows first: the unset value (a task without the field), else the schema default,
        else the schema minimum."""
        value = self.unset if self.unset is not None else schema.default(self.path)
        return schema.field(self.path).get("minimum") if value is None else value


@dataclass(frozen=True)
class OptionNode:
    node_id: str
    title: str
    input: str  # the Inference node's input it feeds
    type: str  # the socket type
    widgets: tuple[OptionWidget, ...]
    description: str

    @property
    def task_fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(w.path.split(".")[0] for w in self.widgets))

    def fields_from_widgets(self, values: dict) -> dict:
        task: dict = {}
        for w in self.widgets:
            if w.unset is not None and values[w.name] == w.unset:
                continue
            *parents, leaf = w.path.split(".")
            target = task
            for part in parents:
                target = target.setdefault(part, {})
            target[leaf] = values[w.name]
        return task

    def widgets_from_task(self, task: dict) -> dict:
        values = {}
        for w in self.widgets:
            value: Any = task
            for part in w.path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            values[w.name] = w.default if value is None else value
        return values


DENOISE = OptionNode(
    "SDXLKit_Denoise", "SDXL Denoise (img2img)", "denoise", "SDXLKIT_DENOISE",
    (OptionWidget("strength", "strength", tooltip="how far from the seed image: 0 keeps it, 1 ignores it"),),
    "img2img / inpaint strength. Without this node the engine's default applies (0.8, outpaint 1.0).")
INPAINT = OptionNode(
    "SDXLKit_InpaintOptions", "SDXL Inpaint Only Masked", "inpaint", "SDXLKIT_INPAINT",
    (OptionWidget("mask_margin", "maskMargin", tooltip="context pixels around the mask; the area is inpainted at "
                                                      "full resolution (A1111 'only masked')"),),
    "Inpaints only the mask's area plus mask_margin, at full resolution (task field maskMargin).")
OUTPAINT = OptionNode(
    "SDXLKit_Outpaint", "SDXL Outpaint", "outpaint", "SDXLKIT_OUTPAINT",
    (*(OptionWidget(side, f"outpaint.{side}", unset=0) for side in ("top", "right", "bottom", "left")),
     OptionWidget("blur", "outpaint.blur", unset=0)),
    "Extends the seed image's canvas by these pixels per side; width/height must be the extended size.")
DELIVERY = OptionNode(
    "SDXLKit_Delivery", "SDXL Delivery (API)", "delivery", "SDXLKIT_DELIVERY",
    (OptionWidget("output_type", "outputType"), OptionWidget("delivery_method", "deliveryMethod"),
     OptionWidget("include_cost", "includeCost"),
     OptionWidget("ttl", "ttl", unset=0, minimum=0, tooltip="seconds the hosted URL lives; 0 = not set"),
     OptionWidget("webhook_url", "webhookURL", unset="", tooltip="empty = not set"),
     OptionWidget("upload_endpoint", "uploadEndpoint", unset="", tooltip="empty = not set")),
    "How a task run through the API (/sdxlkit/v1, the CLI) returns its results. Inside ComfyUI the Save node "
    "writes the files; these fields travel with the task.")
NOT_SET = "not set"  # a choice widget's value that writes nothing
SAFETY = OptionNode(
    "SDXLKit_Safety", "SDXL Safety Check", "safety", "SDXLKIT_SAFETY",
    (OptionWidget("check_content", "safety.checkContent"),
     OptionWidget("mode", "safety.mode", unset=NOT_SET,
                  tooltip="when set, decides instead of check_content (fast = check); not set = check_content decides")),
    "The task's content-moderation options (safety.checkContent, safety.mode).")

ACCELERATOR = OptionNode(
    "SDXLKit_AcceleratorCache", "SDXL Accelerator Cache", "accelerator", "SDXLKIT_ACCELERATOR",
    (OptionWidget("deep_cache", "acceleratorOptions.deepCache",
                  tooltip="DeepCache: reuse the UNet's deep features between refresh steps"),
     OptionWidget("deep_cache_interval", "acceleratorOptions.deepCacheInterval",
                  tooltip="a full UNet step every this many steps (1 = no caching)"),
     OptionWidget("deep_cache_branch_id", "acceleratorOptions.deepCacheBranchId",
                  tooltip="where the shallow path leaves the U: 0 skips the most (fastest), 8 only the middle block"),
     OptionWidget("tea_cache", "acceleratorOptions.teaCache",
                  tooltip="first-block cache: skip the rest of the UNet while its first block barely changes"),
     OptionWidget("tea_cache_distance", "acceleratorOptions.teaCacheDistance",
                  tooltip="0 favours quality (never reuses), 1 speed; threshold = 0.24 x distance"),
     OptionWidget("cache_start_step", "acceleratorOptions.cacheStartStep", unset=-1, minimum=-1,
                  tooltip="first step that may be cached; -1 = not set"),
     OptionWidget("cache_end_step", "acceleratorOptions.cacheEndStep", unset=0, minimum=0,
                  tooltip="caching stops before this step; 0 = not set (the last step)"),
     OptionWidget("cache_start_percent", "acceleratorOptions.cacheStartStepPercentage", unset=-1, minimum=-1,
                  tooltip="the same as a percentage of the steps; -1 = not set"),
     OptionWidget("cache_end_percent", "acceleratorOptions.cacheEndStepPercentage", unset=0, minimum=0,
                  tooltip="the same as a percentage of the steps; 0 = not set"),
     OptionWidget("max_consecutive_cached", "acceleratorOptions.cacheMaxConsecutiveSteps",
                  tooltip="a full step is forced after this many cached steps in a row")),
    "Speeds up sampling by reusing UNet work between steps (acceleratorOptions): DeepCache, and a first-block "
    "cache under the task field teaCache. Set either window as steps or as percentages, not both.")

OPTION_NODES = (DENOISE, INPAINT, OUTPAINT, DELIVERY, SAFETY, ACCELERATOR)
