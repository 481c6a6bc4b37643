"""The interface every node type implements to take part in graph <-> task conversion.

A `NodeMapping` describes one node type as the ComfyUI frontend and the API format see it (sockets, widgets in
define_schema order, outputs with their types) and says how its widget values and upstream values become task
values (`evaluate`, graph -> task). The task -> graph direction lives beside it, in the node's module under
`mappings/`, as a `build...` function that adds the node to a `structure.Graph`. Adding a node type = one module
there plus its entry in `mappings.MAPPINGS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from ..errors import SdxlKitError
from ..task import schema
from ..task.model import LOCAL_DEFAULTS

IMAGE_MODES = ("data_uri", "file")


class GraphConversionError(SdxlKitError):
    """A graph or task that cannot be converted; the message names the node or field and what to change."""


@dataclass(frozen=True)
class ConvertOptions:
    """input_dir: ComfyUI's input folder (images of LoadImage nodes); models_dir: the models folder, to map model
    ids to file names and back (None: references are copied as they are); model_names: instead of models_dir, an
    object with `file_name_for(ref, kind)` and `reference_for(name, kind)` (inside ComfyUI: its folder_paths, so
    extra_model_paths.yaml folders count); images: how graph -> task writes images ("data_uri" or "file", see
    images.py); base_dir: where relative image paths of a task file start; image_names: file names for images
    written to the input folder, by the sha256 of their PNG (examples.py; default: named by that hash)."""

    input_dir: Path | None = None
    models_dir: Path | None = None
    model_names: Any = None
    images: str = "data_uri"
    base_dir: Path | None = None
    image_names: dict | None = None

    def __post_init__(self):
        if self.images not in IMAGE_MODES:
            raise GraphConversionError(f"images must be one of {', '.join(IMAGE_MODES)} (got {self.images!r})")


@dataclass(frozen=True)
class Socket:
    """A linkable input or an output."""

    name: str
    type: str
    optional: bool = False


@dataclass(frozen=True)
class Widget:
    """A widget input. `ui_only` widgets (LoadImage's upload button) have a value in the UI workflow only;
    `control_after_generate` adds the frontend's control value ("fixed", "randomize", ...) after this one;
    `optional` widgets came after a release, last in their node: graphs saved before lack them and get the default."""

    name: str
    type: str
    default: Any
    control_after_generate: bool = False
    multiline: bool = False
    ui_only: bool = False
    optional: bool = False


def schema_default(path: str) -> Any:
    """A widget's default as the pack's nodes compute it: the schema default, else the local one, else the minimum."""
    f = schema.field(path)
    value = f.get("default", LOCAL_DEFAULTS.get(path))
    return f.get("minimum") if value is None else value


# --- values flowing along links when a graph is evaluated (graph -> task) ---

@dataclass(frozen=True)
class ModelRefs:
    SOURCES: ClassVar[str] = "an SDXLKit_Loader node"
    model: str
    vae: str | None


@dataclass(frozen=True)
class ImageFile:
    """An image file of ComfyUI's input folder as a load node reads it: channel None = the RGB image, else a mask
    from that channel ("alpha" is inverted, as ComfyUI does); require_alpha: ComfyUI gives no real mask without one."""

    SOURCES: ClassVar[str] = "a LoadImage or LoadImageMask node"
    name: str
    channel: str | None = None
    require_alpha: bool = False
    task_ref: str | None = None  # the imported task's reference, kept by the node
    data_uri: bool = False  # the imported task had the PNG data URI: written so whatever the images option


@dataclass(frozen=True)
class Stack:
    SOURCES: ClassVar[str] = "a chain of SDXLKit stack nodes"
    entries: tuple = ()


@dataclass(frozen=True)
class TaskPart:
    """What an option node feeds the Inference node: top-level task fields; when a node runs, also the images the
    engine reads by key (runner.generate_task's `images`) and model files by (reference, kind)."""

    SOURCES: ClassVar[str] = "an SDXLKit option node"
    fields: dict
    images: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TaskOutput:
    SOURCES: ClassVar[str] = "an SDXL Inference node"
    node_id: str
    task: dict


@dataclass(frozen=True)
class Upstream:
    """What feeds an input: the origin node and the value of its output (None when it has no static value)."""

    node_id: str
    class_type: str
    value: Any


def expect(inputs: dict[str, Upstream], name: str, node, cls: type, *, required: bool = False):
    """The value of input `name` if it is a `cls`; None when unlinked and optional; a clear error otherwise."""
    upstream = inputs.get(name)
    if upstream is None:
        if required:
            raise GraphConversionError(f"input {name!r} of node {node.id} ({node.class_type}) is not connected")
        return None
    if not isinstance(upstream.value, cls):
        raise GraphConversionError(
            f"input {name!r} of node {node.id} ({node.class_type}) is fed by node {upstream.node_id} "
            f"({upstream.class_type}), whose output cannot be written into a task statically; it must come from "
            f"{cls.SOURCES}")
    return upstream.value


@dataclass(frozen=True)
class NodeMapping:
    """One node type. `inputs` is in define_schema order (sockets and widgets interleaved, as the node declares
    them); `evaluate(node, inputs, options)` returns one value per output; `task_fields` are the top-level task
    fields the node holds; `sink(node)` (output nodes) returns fields it sets on the tasks feeding it."""

    class_type: str
    title: str
    column: int
    inputs: tuple[Socket | Widget, ...]
    outputs: tuple[Socket, ...]
    evaluate: Callable[..., tuple]
    task_fields: tuple[str, ...] = ()
    produces_task: bool = False
    sink: Callable[..., dict] | None = None
    width: int = 320
    min_height: int = 0

    @property
    def sockets(self) -> tuple[Socket, ...]:
        return tuple(i for i in self.inputs if isinstance(i, Socket))

    @property
    def widgets(self) -> tuple[Widget, ...]:
        """Widgets whose values the API format carries (not the UI-only ones)."""
        return tuple(i for i in self.inputs if isinstance(i, Widget) and not i.ui_only)

    def socket(self, name: str) -> Socket | None:
        return next((s for s in self.sockets if s.name == name), None)

    def widgets_values(self, values: dict, controls: dict) -> list:
        """The UI workflow's widgets_values: widgets in order, a control value after each control_after_generate
        widget, then UI-only widgets with their fixed values."""
        out = []
        for w in (i for i in self.inputs if isinstance(i, Widget)):
            out.append(w.default if w.ui_only else values[w.name])
            if w.control_after_generate:
                out.append(controls.get(w.name, "fixed"))
        return out

    def widgets_from_values(self, values: list | dict, node_id: str) -> dict:
        """Widget values by name from a UI workflow's widgets_values (list in widget order, or a dict by name)."""
        if isinstance(values, dict):
            missing = [w.name for w in self.widgets if w.name not in values and not w.optional]
            if missing:
                raise GraphConversionError(f"node {node_id} ({self.class_type}) has no value for {', '.join(missing)}")
            return {w.name: values.get(w.name, w.default) for w in self.widgets}
        order = []
        for w in (i for i in self.inputs if isinstance(i, Widget)):
            order.append(w)
            if w.control_after_generate:
                order.append(None)
        saved_before = [w for w in order[len(values):] if w is not None and w.optional]
        values = [*values, *(w.default for w in saved_before)] if len(saved_before) == len(order) - len(values) > 0 \
            else values
        if len(values) != len(order):
            raise GraphConversionError(
                f"node {node_id} ({self.class_type}) has {len(values)} widget values where this version of the node "
                f"has {len(order)} ({', '.join(w.name if w else 'control_after_generate' for w in order)})")
        return {w.name: v for w, v in zip(order, values) if w is not None and not w.ui_only}

    def height(self) -> int:
        """About the height the frontend gives the node (slots 20 px, widgets 24 px, multiline text 80 px)."""
        rows = max(len(self.sockets), len(self.outputs))
        widgets = 0
        for w in (i for i in self.inputs if isinstance(i, Widget)):
            widgets += 80 if w.multiline else 24
            widgets += 24 if w.control_after_generate else 0
        return max(self.min_height, 12 + rows * 22 + widgets)
