"""The pack's only import of ComfyUI's node API."""

from comfy_api.latest import ComfyExtension, io, ui  # noqa: F401
