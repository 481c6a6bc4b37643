"""The option nodes (sdxlkit/graph/option_nodes.py): one small node per group of task fields, wired into an
optional input of SDXL Inference. Widgets take range, step and default from the imageInference schema, and their
values are checked at queue time by the field's rules, except a widget left at its "not set" value."""

from __future__ import annotations

from ..sdxlkit.graph.mapping import TaskPart
from ..sdxlkit.graph.option_nodes import OPTION_NODES, OptionNode, OptionWidget
from ..sdxlkit.task import schema
from ._api import io
from .input_checks import CheckedNode, check_widget_values
from .widgets import combo_widget, float_widget, int_widget


def _input(w: OptionWidget):
    field = schema.field(w.path)
    extra = {"tooltip": w.tooltip} if w.tooltip else {}
    if "enum" in field:
        return combo_widget(w.name, w.path, unset=w.unset, **extra)
    if field["type"] == "integer":
        return int_widget(w.name, w.path, **extra, **({"min": w.minimum, "default": w.unset} if w.minimum is not None else {}))
    if field["type"] == "number":
        return float_widget(w.name, w.path, **extra)
    if field["type"] == "boolean":
        return io.Boolean.Input(w.name, default=w.default, **extra)
    return io.String.Input(w.name, default=w.default, **extra)


def _node_class(spec: OptionNode) -> type[CheckedNode]:
    part_type = io.Custom(spec.type)

    def define_schema(cls) -> io.Schema:
        return io.Schema(node_id=spec.node_id, display_name=spec.title, category="sdxlkit/options",
                         description=spec.description, inputs=[_input(w) for w in spec.widgets],
                         outputs=[part_type.Output(display_name=spec.input)])

    def validate_inputs(cls, **values) -> bool | str:
        unset = {w.name: w.unset for w in spec.widgets if w.unset is not None}
        return check_widget_values(cls, {k: v for k, v in values.items() if k not in unset or v != unset[k]})

    def execute(cls, **values) -> io.NodeOutput:
        return io.NodeOutput(TaskPart(spec.fields_from_widgets(values)))

    name = "SDXLKit" + spec.node_id.removeprefix("SDXLKit_")
    methods = {"define_schema": define_schema, "validate_inputs": validate_inputs, "execute": execute}
    return type(name, (CheckedNode,), {k: classmethod(f) for k, f in methods.items()} | {"__module__": __name__})


OPTION_NODE_CLASSES = [_node_class(spec) for spec in OPTION_NODES]
