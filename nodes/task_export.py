"""SDXLKit_TaskExport: shows the task JSON of the SDXL Inference node feeding it, and can save it as a file."""

from __future__ import annotations

import json
from pathlib import Path

from ..sdxlkit.results import write_atomic
from ._api import io, ui
from .input_checks import CheckedNode


class SDXLKitTaskExport(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SDXLKit_TaskExport",
            display_name="SDXL Task Export",
            category="sdxlkit",
            description="Shows the imageInference task JSON that the graph feeding it runs (images inlined as data "
                        "URIs) and, with save on, writes it to the output folder as <prefix>_00001_.json.",
            inputs=[
                io.String.Input("task", force_input=True, tooltip="the task output of SDXL Inference"),
                io.Boolean.Input("save", default=False, tooltip="also write the JSON to the output folder"),
                io.String.Input("filename_prefix", default="sdxlkit_task"),
            ],
            outputs=[io.String.Output(display_name="task")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, task: str, save: bool, filename_prefix: str) -> io.NodeOutput:
        import folder_paths

        text = json.dumps(json.loads(task), indent=2)
        if save:
            folder, filename, counter, _, _ = folder_paths.get_save_image_path(filename_prefix, folder_paths.get_output_directory())
            write_atomic(Path(folder) / f"{filename}_{counter:05}_.json", text.encode("utf-8"))
        return io.NodeOutput(text, ui=ui.PreviewText(text))
