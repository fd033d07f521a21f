"""Who sent a request: its peer, or, when the peer is a proxy trusted by FORWARDED_ALLOW_IPS, the client behind it."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from flask import current_app, request

_MAX_ADDRESS = 64  # longer than any IPv6 text: a forwarded value past it is not an address


def trusted(address: str, allowed: Iterable[str]) -> bool:
    """Whether address is one of the allowed proxies: gunicorn's notation, addresses, networks or '*'."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in allowed:
        if entry == "*":
            return True
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue  # gunicorn refuses such an entry at start; here it trusts nobody
    return False


def client_address() -> str:
    """The address of whoever sent this request.

    X-Forwarded-For is read right to left, past the trusted proxies only: each proxy appends the peer it saw, so the
    first untrusted entry is the client the outermost trusted proxy saw, and nothing the client wrote before it counts.
    """
    allowed = current_app.config["FORWARDED_ALLOW_IPS"]
    peer = request.remote_addr or "unknown"
    if not trusted(peer, allowed):
        return peer
    hops = [hop.strip() for header in request.headers.getlist("X-Forwarded-For") for hop in header.split(",")]
    hops = [hop[:_MAX_ADDRESS] for hop in hops if hop]
    for hop in reversed(hops):
        if not trusted(hop, allowed):
            return hop
    return hops[0] if hops else peer  # every hop a trusted address: the first is where the request began
