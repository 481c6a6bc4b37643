"""SDXLKit_Refiner: the SDXL refiner checkpoint and the step where it takes over. A part of SDXL Inference: it
passes on a TaskPart with the task's refiner object and the file picked; the engine loads the refiner when the
Inference node runs (on the base model's device, in its precision)."""

from __future__ import annotations

from ..sdxlkit.graph import refiner_node
from ..sdxlkit.graph.mapping import TaskPart
from ..sdxlkit.graph.references import DIFFUSERS_PREFIX
from ..sdxlkit.refiner.switch import DEFAULT_SWITCH_PERCENT
from ._api import io
from .input_checks import CheckedNode
from .loader import checkpoint_options, checkpoint_path
from .model_names import ComfyModelNames


class SDXLKitRefiner(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=refiner_node.NODE_ID,
            display_name="SDXL Refiner",
            category="sdxlkit",
            description="The SDXL refiner (sd_xl_refiner_1.0: a single file in Stability's layout or a diffusers "
                        "folder). The base model denoises up to the start step, the refiner finishes the same "
                        "schedule (aesthetic score 6.0, negative 2.5, as diffusers). Wire it into SDXL Inference.",
            inputs=[
                io.Combo.Input("ckpt_name", options=checkpoint_options(),
                               tooltip="the refiner checkpoint (models/checkpoints or models/diffusers)"),
                io.Int.Input("start", default=DEFAULT_SWITCH_PERCENT, min=1, max=99,
                             tooltip="where the refiner takes over: a step (2..steps-1) or a percent of the steps"),
                io.Combo.Input("start_unit", options=list(refiner_node.UNITS), default="percent"),
            ],
            outputs=[io.Custom(refiner_node.SOCKET_TYPE).Output(display_name="refiner")],
        )

    @classmethod
    def execute(cls, ckpt_name: str, **values) -> io.NodeOutput:
        path = checkpoint_path(ckpt_name)
        model_ref = ComfyModelNames().reference_for_path(path, ckpt_name.removeprefix(DIFFUSERS_PREFIX))
        return io.NodeOutput(TaskPart({"refiner": refiner_node.entry_from_widgets(values, model_ref)},
                                      files={(model_ref, "checkpoints"): path}))
