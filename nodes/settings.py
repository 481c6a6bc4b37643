"""The pack's server-side configuration (sdxlkit.api.config: environment variables or the pack's sdxlkit.json, never
a user setting the HTTP API could change) and the routes' error answers."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..sdxlkit.api.config import RouteConfig, config_path, load_config
from ..sdxlkit.api.errors import error_response, without_paths

PACK_ROOT = Path(__file__).resolve().parent.parent


def route_config() -> RouteConfig:
    """Read on every request, so an operator's change to the file applies without a restart."""
    return load_config(dict(os.environ), config_path(PACK_ROOT))


def _folder_roles() -> dict[str, str]:
    import folder_paths

    roles = {str(PACK_ROOT): "the sdxlkit pack", folder_paths.base_path: "the ComfyUI folder",
             folder_paths.models_dir: "models", folder_paths.get_input_directory(): "the input folder",
             folder_paths.get_output_directory(): "the output folder", folder_paths.get_temp_directory(): "the temp folder"}
    for kind in ("checkpoints", "vae", "loras", "controlnet", "diffusers"):
        for folder in folder_paths.get_folder_paths(kind):
            roles.setdefault(folder, f"models/{kind}")
    return {os.path.abspath(k): v for k, v in roles.items()} | {os.path.realpath(k): v for k, v in roles.items()}


def error_json(error: Exception, tasks=None, task_uuid: str | None = None):
    """The API-shaped error answer; messages name the server's folders by role and show no other path."""
    from aiohttp import web

    if not isinstance(error, ValueError):
        logging.exception("sdxlkit: unexpected error in a route", exc_info=error)
    body, status = error_response(error, tasks, task_uuid)
    roles = _folder_roles()
    for entry in body["errors"]:
        entry["message"] = without_paths(entry["message"], roles)
    return web.json_response(body, status=status)
