"""Where results may be sent (webhookURL, uploadEndpoint) and sending them: off unless enabled, and never to loopback or
private networks unless that is allowed too. Host names are resolved and every address they resolve to is checked, so
a public name pointing at 127.0.0.1 is refused as well; delivery then connects only to an address that was checked
(the Host header and TLS server name stay the URL's host), follows no redirect and times out, so neither a redirect
nor a name that resolves differently later can send results elsewhere."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
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


@dataclass(frozen=True)
class CheckedURL:
    """A URL results may be sent to, with the addresses its host resolved to when it was checked."""

    url: str
    addresses: tuple[str, ...]


def check_outbound(url: str, field: str, policy: OutboundPolicy) -> CheckedURL:
    """The URL and its checked addresses if results may be sent there; else an error naming the field and why."""
    if not policy.enabled:
        raise _refuse(field, "sending results to URLs is off on this server; the server's operator enables it with "
                             "SDXLKIT_OUTBOUND=1 or \"outbound\": true in the pack's sdxlkit.json; or remove the field")
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
                             "needs the server to allow private addresses (SDXLKIT_OUTBOUND_PRIVATE=1)")
    return CheckedURL(url, tuple(dict.fromkeys(str(a) for a in addresses)))


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to a checked address instead of resolving the host again; Host stays the URL's."""

    def __init__(self, host: str, port: int | None, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(_PinnedHTTP):
    default_port = 443

    def connect(self):
        super().connect()
        self.sock = ssl.create_default_context().wrap_socket(self.sock, server_hostname=self.host)


def send(target: CheckedURL, method: str, body: bytes, content_type: str, timeout: float = 30) -> int:
    """Send `body` to a checked URL; the HTTP status. A redirect is an error, as is any status >= 300."""
    parts = urlsplit(target.url)
    kind = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    failures = []
    for address in target.addresses:
        connection = kind(parts.hostname, parts.port, address, timeout)
        try:
            connection.request(method, path, body=body, headers={"Content-Type": content_type, "User-Agent": "sdxlkit"})
            status = connection.getresponse().status
        except OSError as exc:
            failures.append(f"{address}: {exc}")
            continue
        finally:
            connection.close()
        if status >= 300:
            raise SdxlKitError(f"{parts.hostname} answered HTTP {status}" + (" (redirects are not followed)" if status < 400 else ""))
        return status
    raise SdxlKitError(f"cannot reach {parts.hostname} ({'; '.join(failures)})")
