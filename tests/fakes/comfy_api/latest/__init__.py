"""A minimal stand-in for ComfyUI's comfy_api.latest: just the surface the pack's nodes use, recording arguments."""

from enum import Enum


class _Input:
    def __init__(self, id, **kwargs):
        self.id = id
        self.kwargs = kwargs
        for key, value in kwargs.items():
            setattr(self, key, value)


class _Output:
    def __init__(self, id=None, display_name=None, **kwargs):
        self.id = id
        self.display_name = display_name


def _type(name):
    return type(name, (), {"io_type": name, "Input": type("Input", (_Input,), {"io_type": name}),
                           "Output": type("Output", (_Output,), {"io_type": name})})


class _IO:
    Int = _type("INT")
    Float = _type("FLOAT")
    String = _type("STRING")
    Boolean = _type("BOOLEAN")
    Combo = _type("COMBO")
    Image = _type("IMAGE")
    Mask = _type("MASK")

    @staticmethod
    def Custom(name):
        return _type(name)

    class Hidden(str, Enum):
        prompt = "PROMPT"
        extra_pnginfo = "EXTRA_PNGINFO"
        unique_id = "UNIQUE_ID"

    class FolderType(str, Enum):
        input = "input"
        output = "output"
        temp = "temp"

    class Schema:
        def __init__(self, node_id, display_name=None, category="", inputs=(), outputs=(), hidden=(),
                     description="", is_output_node=False, **kwargs):
            self.node_id = node_id
            self.display_name = display_name
            self.category = category
            self.inputs = list(inputs)
            self.outputs = list(outputs)
            self.hidden = list(hidden)
            self.description = description
            self.is_output_node = is_output_node
            self.is_deprecated = kwargs.get("is_deprecated", False)

    class ComfyNode:
        hidden = None

    class NodeOutput:
        def __init__(self, *args, ui=None, **kwargs):
            self.args = args
            self.ui = ui


io = _IO()


class _UI:
    class SavedResult(dict):
        def __init__(self, filename, subfolder, type):
            super().__init__(filename=filename, subfolder=subfolder, type=type)

    class SavedImages:
        def __init__(self, results, is_animated=False):
            self.results = results

    class PreviewText:
        def __init__(self, value, **kwargs):
            self.value = value


ui = _UI()


class ComfyExtension:
    async def on_load(self):
        pass

    async def get_node_list(self):
        raise NotImplementedError
