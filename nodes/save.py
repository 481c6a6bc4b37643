"""SDXLKit_Save: writes images as JPG/PNG/WEBP with ComfyUI's prompt/workflow metadata and the task JSON."""

from __future__ import annotations

import json
from pathlib import Path

from ..sdxlkit.images import FORMATS
from ..sdxlkit.metadata import TASK_KEY, encode_with_metadata
from ..sdxlkit.results import seeded_task, write_atomic
from ._api import io, ui
from .input_checks import CheckedNode
from .prompt_meta import source_task_uuid
from .tensors import image_to_pil
from .widgets import combo_widget, int_widget


def _texts(prompt, extra_pnginfo, task_data: dict | None) -> dict[str, str]:
    texts = {}
    if prompt is not None:
        texts["prompt"] = json.dumps(prompt)
    for key, value in (extra_pnginfo or {}).items():
        texts[key] = json.dumps(value)
    if task_data is not None:
        texts[TASK_KEY] = json.dumps(task_data)
    return texts


class SDXLKitSave(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SDXLKit_Save",
            display_name="SDXL Save (with task)",
            category="sdxlkit",
            description="Saves images to the output folder with the workflow and the task JSON embedded. "
                        "PNG keeps the workflow loadable by dropping the file on ComfyUI.",
            inputs=[
                io.Image.Input("images"),
                io.String.Input("filename_prefix", default="sdxlkit"),
                combo_widget("output_format", "outputFormat"),
                int_widget("output_quality", "outputQuality", tooltip="JPG/WEBP quality"),
                io.String.Input("task", optional=True, force_input=True, tooltip="task JSON from SDXL Inference"),
            ],
            outputs=[],
            hidden=[io.Hidden.prompt, io.Hidden.extra_pnginfo, io.Hidden.unique_id],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, images, filename_prefix: str, output_format: str, output_quality: int, task: str | None = None) -> io.NodeOutput:
        import folder_paths

        task_data = None
        if task:
            task_data = json.loads(task) | {"outputFormat": output_format, "outputQuality": output_quality}
            # the task string may come from ComfyUI's cache of an identical earlier run with another taskUUID
            kept = source_task_uuid(getattr(cls.hidden, "prompt", None), getattr(cls.hidden, "unique_id", None), "task")
            if kept:
                task_data["taskUUID"] = kept
        folder, filename, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, folder_paths.get_output_directory(), images.shape[2], images.shape[1])
        results = []
        for index in range(images.shape[0]):
            per_image = None if task_data is None else seeded_task(task_data, task_data.get("seed", 0) + index)
            data = encode_with_metadata(image_to_pil(images, index), output_format, output_quality,
                                        _texts(cls.hidden.prompt, cls.hidden.extra_pnginfo, per_image))
            name = f"{filename.replace('%batch_num%', str(index))}_{counter + index:05}_.{FORMATS[output_format][2]}"
            write_atomic(Path(folder) / name, data)
            results.append(ui.SavedResult(name, subfolder, io.FolderType.output))
        return io.NodeOutput(ui=ui.SavedImages(results))

