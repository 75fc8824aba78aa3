"""The address of the client a request came from, through the reverse proxies the config trusts.

Behind a proxy every request's TCP peer is the proxy, so per-address limits (the console's login throttle,
the public feedback form, resident code requests) would count the whole county as one client. A proxy named
in ``[server] trusted_proxies`` appends the address it received the request from to ``X-Forwarded-For``;
the client is the right-most address in that header that is not itself a trusted proxy. Anything left of it
was written by the client and is never believed. A request whose peer is not a trusted proxy is taken at
its TCP address, whatever its headers say. The limits count an IPv6 client by its /64 network (``limit_key``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

from notifier.api.keys import SETTINGS

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN = "unknown"


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "192.0.2.1:443"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_address(request: web.BaseRequest, trusted_proxies: Sequence[IPNetwork]) -> str:
    peer_text = request.remote or ""
    peer = _parse_ip(peer_text)
    if peer is None:
        return peer_text or UNKNOWN
    if not trusted_proxies or not _trusted(peer, trusted_proxies):
        return str(peer)
    hops = [hop for header in request.headers.getall("X-Forwarded-For", []) for hop in header.split(",")]
    for hop in reversed(hops):
        address = _parse_ip(hop)
        if address is None:
            # a hop no trusted proxy would write: everything left of it is the client's own say
            return str(peer)
        if not _trusted(address, trusted_proxies):
            return str(address)
    return str(peer)


def limit_key(address: str) -> str:
    """What a per-address limit counts for a client address: an IPv4 address, or an IPv6 address's /64 network.
    A /64 is one subscriber's (a phone's, a home router's), and the device picks the other 64 bits at will:
    counted whole, each of its addresses would have a limit of its own."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address  # "unknown", or a peer that is not an IP address (a Unix socket)
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:  # an IPv4 client of a dual-stack socket: its own address
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return address


def request_client(request: web.Request) -> str:
    """The client under this server's ``[server] trusted_proxies``, as the per-address limits count it
    (``limit_key``: an IPv6 client by its /64)."""
    return limit_key(client_address(request, request.app[SETTINGS].server.trusted_proxies))
