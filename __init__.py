"""sdxlkit ComfyUI node pack: SDXL nodes whose graph is an imageInference task. Nodes are registered only through
comfy_entrypoint (a NODE_CLASS_MAPPINGS export would shadow it)."""

WEB_DIRECTORY = "./js"


async def comfy_entrypoint():
    from .nodes import SdxlKitExtension

    return SdxlKitExtension()
