"""Where webhooks may not go: anything but public http(s) addresses, unless allowed.

A URL is checked when it is registered (so the caller hears about it at once) and again at
delivery, against the addresses its host resolves to then; the delivery connects to the very
address that was checked (``pinned``), so a DNS answer that changes in between (rebinding)
cannot steer it to an internal service.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.config import Settings
from app.errors import InvalidInput

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
CGNAT = ipaddress.ip_network("100.64.0.0/10")
MAX_URL_CHARS = 2048


class WebhookUrlForbidden(InvalidInput):
    code = "webhook_url_forbidden"


@dataclass(frozen=True, slots=True)
class Destinations:
    """What the operator allows beyond public addresses."""

    allow_private: bool = False
    allow_hosts: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> Destinations:
        hosts = frozenset(h.lower() for h in settings.webhook_allow_hosts)
        return cls(settings.webhook_allow_private, hosts)


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int
    address: IpAddress  # the checked address to connect to

    def pinned_url(self, url: str) -> str:
        """``url`` with its host replaced by the checked address."""
        parts = urlsplit(url)
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        netloc = f"{host}:{self.port}"
        return parts._replace(netloc=netloc).geturl()

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def internal(address: IpAddress) -> bool:
    """Loopback, private (RFC 1918, ULA), link-local (cloud metadata), CGNAT, multicast,
    reserved or unspecified: never a public receiver."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return internal(address.ipv4_mapped)
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (address.version == 4 and address in CGNAT)
    )


def _parse(url: str) -> tuple[str, str, int]:
    if len(url) > MAX_URL_CHARS:
        raise WebhookUrlForbidden("the webhook URL is too long", param="webhook_url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookUrlForbidden(
            "the webhook URL is not a valid URL", param="webhook_url"
        ) from None
    if parts.scheme not in ("http", "https"):
        raise WebhookUrlForbidden("webhook URLs must be http or https", param="webhook_url")
    if not parts.hostname:
        raise WebhookUrlForbidden("the webhook URL has no host", param="webhook_url")
    if parts.username or parts.password:
        raise WebhookUrlForbidden("webhook URLs may not carry credentials", param="webhook_url")
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


def resolve(host: str, port: int) -> list[IpAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise WebhookUrlForbidden(
            f"the webhook host {host!r} does not resolve", param="webhook_url"
        ) from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def check(url: str, allowed: Destinations) -> Target:
    """The address to deliver ``url`` to, or ``WebhookUrlForbidden``.

    Every address the host resolves to must be public (unless allowed), not just the first:
    otherwise a host with one public and one internal record passes the check and may be
    reached on the internal one."""
    scheme, host, port = _parse(url)
    addresses = resolve(host, port)
    if not addresses:
        raise WebhookUrlForbidden(
            f"the webhook host {host!r} does not resolve", param="webhook_url"
        )
    if not (allowed.allow_private or host in allowed.allow_hosts):
        for address in addresses:
            if internal(address):
                raise WebhookUrlForbidden(
                    f"webhook URLs may not point at internal addresses ({host} is {address})",
                    param="webhook_url",
                )
    return Target(scheme, host, port, addresses[0])
