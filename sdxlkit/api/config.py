"""The headless routes' server-side configuration: outbound delivery, request limits, the public URL of results.

Only the server's operator sets these, through environment variables or the pack's config file (`sdxlkit.json` in
the pack folder, or the file SDXLKIT_CONFIG names); no HTTP request can change them. Environment variables win over
the file. Keys (file / environment):

- outbound / SDXLKIT_OUTBOUND: send results to webhookURL / uploadEndpoint (default off)
- outboundPrivate / SDXLKIT_OUTBOUND_PRIVATE: ...also to loopback, private, link-local and reserved addresses
- maxTasks / SDXLKIT_MAX_TASKS: tasks per request (default 100)
- maxBodyMB / SDXLKIT_MAX_BODY_MB: request body size in MiB (default 64)
- inlineImagesMB / SDXLKIT_INLINE_IMAGES_MB: inline images of queued tasks kept in input/sdxlkit_inline (default 1024)
- publicURL / SDXLKIT_PUBLIC_URL: base of the imageURL of results (default: the address the server listens on)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import SdxlKitError
from .outbound import OutboundPolicy

CONFIG_FILE = "sdxlkit.json"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
# key in the file -> (environment variable, kind, default)
_KEYS = {"outbound": ("SDXLKIT_OUTBOUND", bool, False), "outboundPrivate": ("SDXLKIT_OUTBOUND_PRIVATE", bool, False),
         "maxTasks": ("SDXLKIT_MAX_TASKS", int, 100), "maxBodyMB": ("SDXLKIT_MAX_BODY_MB", int, 64),
         "inlineImagesMB": ("SDXLKIT_INLINE_IMAGES_MB", int, 1024), "publicURL": ("SDXLKIT_PUBLIC_URL", str, None)}


@dataclass(frozen=True)
class RouteConfig:
    outbound: OutboundPolicy = OutboundPolicy()
    max_tasks: int = 100
    max_body_bytes: int = 64 * 2**20
    inline_images_bytes: int = 1024 * 2**20
    public_url: str | None = None

    def shown(self) -> dict:
        """What the UI shows (read-only)."""
        return {"outbound": self.outbound.enabled, "outboundPrivate": self.outbound.allow_private,
                "maxTasks": self.max_tasks, "maxBodyMB": self.max_body_bytes // 2**20}


def _value(key: str, raw, source: str):
    _, kind, _ = _KEYS[key]
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in _TRUE + _FALSE:
            return raw.strip().lower() in _TRUE
        raise SdxlKitError(f"{source}: expected true or false (1/0), got {raw!r}")
    if kind is int:
        try:
            number = int(raw)
        except (TypeError, ValueError):
            number = 0
        if isinstance(raw, bool) or number < 1:
            raise SdxlKitError(f"{source}: expected a whole number >= 1, got {raw!r}")
        return number
    parts = urlsplit(str(raw))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SdxlKitError(f"{source}: expected an http(s) URL like https://images.example.com, got {raw!r}")
    return str(raw).rstrip("/")


def _file_values(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SdxlKitError(f"{path.name}: not readable JSON ({exc})") from None
    if not isinstance(data, dict) or set(data) - set(_KEYS):
        raise SdxlKitError(f"{path.name}: must be a JSON object with keys among {', '.join(_KEYS)}")
    return data


def load_config(env: dict[str, str], config_file: Path) -> RouteConfig:
    """The configuration from `env` (e.g. os.environ) over `config_file`; a bad value is an error naming it."""
    values = {key: default for key, (_, _, default) in _KEYS.items()}
    for key, raw in _file_values(config_file).items():
        values[key] = _value(key, raw, f"{config_file.name}: {key}")
    for key, (variable, _, _) in _KEYS.items():
        if env.get(variable, "").strip():
            values[key] = _value(key, env[variable], variable)
    return RouteConfig(outbound=OutboundPolicy(enabled=values["outbound"], allow_private=values["outboundPrivate"]),
                       max_tasks=values["maxTasks"], max_body_bytes=values["maxBodyMB"] * 2**20,
                       inline_images_bytes=values["inlineImagesMB"] * 2**20, public_url=values["publicURL"])


def config_path(pack_root: Path) -> Path:
    return Path(os.environ.get("SDXLKIT_CONFIG") or pack_root / CONFIG_FILE)
