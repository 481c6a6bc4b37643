"""SDXLKit_Embeddings: a chainable node adding one embeddings[] entry (an SDXL textual inversion). The chain is a
part of SDXL Inference: each node passes on a TaskPart with the embeddings list so far and the files picked."""

from __future__ import annotations

from ..sdxlkit.graph import embeddings_node
from ..sdxlkit.graph.mapping import TaskPart
from . import host
from ._api import io
from .input_checks import CheckedNode
from .model_names import ComfyModelNames
from .widgets import float_widget

FOLDER = "embeddings"


class SDXLKitEmbeddings(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        stack = io.Custom(embeddings_node.STACK_TYPE)
        return io.Schema(
            node_id=embeddings_node.NODE_ID,
            display_name="SDXL Embeddings",
            category="sdxlkit",
            description="Adds one SDXL textual inversion (clip_l + clip_g .safetensors) to the stack. Write its file "
                        "name (without extension) or embedding:name in a prompt; weight scales its vectors. Chain "
                        "several. SD 1.x embeddings are refused.",
            inputs=[
                io.Combo.Input("embedding_name", options=host.file_list(FOLDER),
                               tooltip="an SDXL embedding from models/embeddings"),
                float_widget("weight", "embeddings[].weight"),
                stack.Input("embedding_stack", optional=True),
            ],
            outputs=[stack.Output(display_name="embedding_stack")],
        )

    @classmethod
    def execute(cls, embedding_name: str, embedding_stack: TaskPart | None = None, **values) -> io.NodeOutput:
        path = host.full_path(FOLDER, embedding_name)
        model_ref = ComfyModelNames().reference_for_path(path, embedding_name)
        upstream = embedding_stack or TaskPart({"embeddings": []})
        entry = embeddings_node.entry_from_widgets(values, model_ref)
        return io.NodeOutput(TaskPart({"embeddings": [*upstream.fields["embeddings"], entry]},
                                      files=upstream.files | {(model_ref, FOLDER): path}))
