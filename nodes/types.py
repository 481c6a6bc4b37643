"""Custom socket types of the pack."""

from ..sdxlkit.graph import controlnet_node, ip_adapter_node, lora_node, photomaker_node
from ._api import io

SdxlModel = io.Custom("SDXLKIT_MODEL")
LoraStack = io.Custom(lora_node.STACK_TYPE)
ControlStack = io.Custom(controlnet_node.STACK_TYPE)
IPAdapterStack = io.Custom(ip_adapter_node.STACK_TYPE)
PhotoMaker = io.Custom(photomaker_node.TYPE)
