"""SDXLKit_IPAdapter: a chainable node adding one ipAdapters[] entry (cubiq's IP-Adapter semantics). The chain is a
part of SDXL Inference: each node passes on a TaskPart with the ipAdapters list so far, the guide images under the
keys the engine reads and the adapter and encoder files picked in the graph."""

from __future__ import annotations

from ..sdxlkit.errors import ModelNotFound
from ..sdxlkit.graph import ip_adapter_node
from ..sdxlkit.graph.mapping import TaskPart
from ..sdxlkit.registry import IMAGE_ENCODERS, MAPPING_FILE
from ..sdxlkit.runnable import ip_guide_image_key
from . import host
from ._api import io
from .input_checks import CheckedNode
from .model_names import ComfyModelNames
from .tensors import image_to_pil, png_data_uri
from .types import IPAdapterStack
from .widgets import combo_widget, float_widget

FOLDER = "ipadapter"


class SDXLKitIPAdapter(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        host.ensure_model_folder(FOLDER)
        optional_images = [io.Image.Input(name, optional=True, tooltip="more guide images (each image of a batch)")
                           for name in ip_adapter_node.IMAGE_INPUTS[1:]]
        return io.Schema(
            node_id=ip_adapter_node.NODE_ID,
            display_name="SDXL IP-Adapter",
            category="sdxlkit",
            description="Adds one IP-Adapter (image prompt) with cubiq's semantics: weight types per block (style "
                        "transfer = block t6, composition = t3), combine methods over several guide images, embed "
                        "scalings. Guide images are resized (short side 224) and centre-cropped. Chain several; "
                        "their effects add up. Weight 0 leaves the model as it is.",
            inputs=[
                io.Image.Input(ip_adapter_node.IMAGE_INPUTS[0], tooltip="guide image(s): every image of the batch"),
                *optional_images,
                io.Combo.Input("ipadapter_name", options=host.file_list(FOLDER),
                               tooltip="an SDXL IP-Adapter from models/ipadapter (base, Plus, Plus Face)"),
                io.Combo.Input("clip_vision_name", options=host.file_list("clip_vision"),
                               tooltip="its image encoder from models/clip_vision: ViT-bigG for ip-adapter_sdxl, "
                                       "ViT-H for the *_vit-h adapters"),
                float_widget("weight", "ipAdapters[].weight"),
                combo_widget("weight_type", "ipAdapters[].weightType"),
                combo_widget("combine_method", "ipAdapters[].combineMethod"),
                combo_widget("embed_scaling", "ipAdapters[].embedScaling"),
                io.Float.Input("weight_composition", default=ip_adapter_node.WEIGHT_COMPOSITION_DEFAULT, min=0.0,
                               max=1.0, step=0.01, round=0.01,
                               tooltip="weight of the composition block (t3) in the style-and-composition types"),
                IPAdapterStack.Input("ip_adapter_stack", optional=True),
            ],
            outputs=[IPAdapterStack.Output(display_name="ip_adapter_stack")],
        )

    @classmethod
    def execute(cls, ipadapter_name: str, clip_vision_name: str, ip_adapter_stack: TaskPart | None = None,
                **values) -> io.NodeOutput:
        images = []
        for name in ip_adapter_node.IMAGE_INPUTS:
            image = values.pop(name, None)
            if image is not None:
                images.extend(image_to_pil(image, i) for i in range(image.shape[0]))
        path = host.full_path(FOLDER, ipadapter_name)
        model_ref = ComfyModelNames().reference_for_path(path, ipadapter_name)
        if model_ref not in IMAGE_ENCODERS:
            raise ModelNotFound(f"{ipadapter_name} is not mapped to an IP-Adapter id ({', '.join(IMAGE_ENCODERS)}), "
                                "which a task needs: use the file names of the default mapping (README) or map the "
                                f"id to this file in models/{MAPPING_FILE}")
        upstream = ip_adapter_stack or TaskPart({"ipAdapters": []})
        index = len(upstream.fields["ipAdapters"])
        entry = ip_adapter_node.entry_from_widgets(values, model_ref, [png_data_uri(i) for i in images])
        return io.NodeOutput(TaskPart(
            {"ipAdapters": [*upstream.fields["ipAdapters"], entry]},
            images=upstream.images | {ip_guide_image_key(index, j): image for j, image in enumerate(images)},
            files=upstream.files | {(model_ref, FOLDER): path,
                                    (IMAGE_ENCODERS[model_ref], "clip_vision"): host.full_path("clip_vision", clip_vision_name)}))
