"""Server-side reading of the pack's settings (declared in js/sdxlkit.js, stored by ComfyUI per user). Environment
variables override them for headless servers: SDXLKIT_OUTBOUND=1, SDXLKIT_OUTBOUND_PRIVATE=1."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..sdxlkit.api.outbound import OutboundPolicy

OUTBOUND_ENABLED = "sdxlkit.Outbound.Enabled"
OUTBOUND_PRIVATE = "sdxlkit.Outbound.AllowPrivate"


def _user_settings() -> dict:
    import folder_paths

    path = Path(folder_paths.get_user_directory()) / "default" / "comfy.settings.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _flag(env: str, setting: str, settings: dict) -> bool:
    if env in os.environ:
        return os.environ[env].strip().lower() in ("1", "true", "yes", "on")
    return bool(settings.get(setting, False))


def outbound_policy() -> OutboundPolicy:
    settings = _user_settings()
    return OutboundPolicy(enabled=_flag("SDXLKIT_OUTBOUND", OUTBOUND_ENABLED, settings),
                          allow_private=_flag("SDXLKIT_OUTBOUND_PRIVATE", OUTBOUND_PRIVATE, settings))
