"""Where webhooks may go: ``http(s)`` URLs whose host is a public address.

A webhook makes authsvc send requests where its creator says, from inside your network:
without a check it could reach the metadata service (169.254.169.254), a database admin
page on 10.x or a port on localhost (server-side request forgery). So a URL's host must
resolve only to global unicast addresses, unless ``AUTHSVC_WEBHOOK_ALLOW_PRIVATE`` lets
private ones through. The check runs when the webhook is created and again before every
attempt, on the addresses the attempt then connects to (``resolve_public``): a name that
resolved to a public address at creation may resolve to a private one later (DNS
rebinding), and the connection goes to the address that was checked, not to a second
lookup.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from authsvc.rules.values import Rejected
from authsvc.setting_names import AUTHSVC_WEBHOOK_ALLOW_PRIVATE

URL_MAX = 2048
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[IpAddress]]


@dataclass(frozen=True)
class Target:
    """A checked webhook URL, split for connecting."""

    scheme: str
    host: str
    port: int
    path: str  # with the query, as sent on the request line


def parse(url: str) -> Target:
    """``url`` split into a Target. Raises Rejected when it is not an absolute http(s)
    URL with a host, or holds credentials or a fragment."""
    if not url:
        raise Rejected("is required")
    if len(url) > URL_MAX:
        raise Rejected(f"must be at most {URL_MAX} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise Rejected("must not hold spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Rejected("is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise Rejected("must be an http:// or https:// URL")
    if not parts.hostname:
        raise Rejected("must name a host")
    if parts.username is not None or parts.password is not None:
        raise Rejected("must not hold a user name or password")
    if parts.fragment:
        raise Rejected("must not hold a fragment (#...)")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, parts.hostname, port or default, path)


def is_public(address: IpAddress) -> bool:
    """True for a global unicast address (not private, loopback, link-local, reserved,
    shared, documentation, unspecified or multicast); IPv4-mapped IPv6 is judged as IPv4."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def resolve(host: str, port: int) -> list[IpAddress]:
    """Every address ``host`` resolves to (an IP literal: itself). Raises OSError when
    it does not resolve."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IpAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def resolve_public(target: Target, allow_private: bool, resolver: Resolver = resolve) -> IpAddress:
    """The address to connect to for ``target``: the first it resolves to, when every one
    is public (or ``allow_private``). Raises Rejected when one is not, OSError when the
    host does not resolve."""
    addresses = resolver(target.host, target.port)
    if not addresses:
        raise OSError(f"{target.host} resolves to no address")
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise Rejected(
                    f"resolves to {address}, a private, loopback or link-local address "
                    f"(set {AUTHSVC_WEBHOOK_ALLOW_PRIVATE}=true to allow it)"
                )
    return addresses[0]


def webhook_url(url: str, allow_private: bool, resolver: Resolver = resolve) -> str:
    """``url`` when a webhook may be created with it. Raises Rejected saying why not.

    A host that does not resolve now is accepted (DNS may be down, or the receiver not
    deployed yet): every attempt checks again before it connects.
    """
    target = parse(url)
    with contextlib.suppress(OSError):
        resolve_public(target, allow_private, resolver)
    return url
