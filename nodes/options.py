"""The option nodes (sdxlkit/graph/option_nodes.py): one small node per group of task fields, wired into an
optional input of SDXL Inference. Widgets take range, step and default from the imageInference schema."""

from __future__ import annotations

from ..sdxlkit.graph.mapping import TaskPart
from ..sdxlkit.graph.option_nodes import OPTION_NODES, OptionNode, OptionWidget
from ..sdxlkit.task import schema
from ._api import io
from .widgets import combo_widget, float_widget, int_widget


def _input(w: OptionWidget):
    field = schema.field(w.path)
    extra = {"tooltip": w.tooltip} if w.tooltip else {}
    if "enum" in field:
        return combo_widget(w.name, w.path, **extra)
    if field["type"] == "integer":
        return int_widget(w.name, w.path, **extra, **({"min": w.minimum, "default": w.unset} if w.minimum is not None else {}))
    if field["type"] == "number":
        return float_widget(w.name, w.path, **extra)
    if field["type"] == "boolean":
        return io.Boolean.Input(w.name, default=w.default, **extra)
    return io.String.Input(w.name, default=w.default, **extra)


def _node_class(spec: OptionNode) -> type[io.ComfyNode]:
    part_type = io.Custom(spec.type)

    def define_schema(cls) -> io.Schema:
        return io.Schema(node_id=spec.node_id, display_name=spec.title, category="sdxlkit/options",
                         description=spec.description, inputs=[_input(w) for w in spec.widgets],
                         outputs=[part_type.Output(display_name=spec.input)])

    def execute(cls, **values) -> io.NodeOutput:
        return io.NodeOutput(TaskPart(spec.fields_from_widgets(values)))

    name = "SDXLKit" + spec.node_id.removeprefix("SDXLKit_")
    return type(name, (io.ComfyNode,), {"define_schema": classmethod(define_schema), "execute": classmethod(execute),
                                        "__module__": __name__})


OPTION_NODE_CLASSES = [_node_class(spec) for spec in OPTION_NODES]
