"""Where results may be sent (webhookURL, uploadEndpoint): off unless enabled, and never to loopback or private
networks unless that is allowed too. Host names are resolved and every address they resolve to is checked, so a
public name pointing at 127.0.0.1 is refused as well."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..errors import Problem, SdxlKitError, TaskValidationError


@dataclass(frozen=True)
class OutboundPolicy:
    enabled: bool = False
    allow_private: bool = False


def _addresses(host: str) -> list[ipaddress._BaseAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError as exc:
        raise SdxlKitError(f"cannot resolve host {host!r} ({exc.strerror or exc})") from None
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def _is_private(address) -> bool:
    return (address.is_loopback or address.is_private or address.is_link_local or address.is_reserved
            or address.is_multicast or address.is_unspecified)


def _refuse(field: str, message: str) -> TaskValidationError:
    return TaskValidationError([Problem(f"$.{field}", message)])


def check_outbound(url: str, field: str, policy: OutboundPolicy) -> str:
    """The URL if results may be sent there; else an error naming the field and why."""
    if not policy.enabled:
        raise _refuse(field, "sending results to URLs is off on this server; enable it in the sdxlkit settings "
                             "(Settings > sdxlkit > Outbound) or with SDXLKIT_OUTBOUND=1, or remove the field")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse(field, f"{url!r} is not an http(s) URL")
    try:
        addresses = _addresses(parts.hostname)
    except SdxlKitError as exc:
        raise _refuse(field, str(exc)) from None
    blocked = [str(a) for a in addresses if _is_private(a)]
    if blocked and not policy.allow_private:
        raise _refuse(field, f"{parts.hostname} is a loopback or private address ({', '.join(blocked)}); sending there "
                             "needs the setting that allows private addresses (SDXLKIT_OUTBOUND_PRIVATE=1)")
    return url
