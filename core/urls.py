"""The absolute URLs Threadline hands Twilio: under PUBLIC_BASE_URL, else the address a request came to; origins."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, has_request_context, request


class NoPublicURL(RuntimeError):
    """No PUBLIC_BASE_URL, and no request to take Threadline's address from."""


def public_base() -> str:
    """Where Twilio reaches Threadline: PUBLIC_BASE_URL, else (within a request) the request's own root URL."""
    base = current_app.config.get("PUBLIC_BASE_URL")
    if base:
        return str(base).rstrip("/")
    if has_request_context():
        return request.url_root.rstrip("/")
    raise NoPublicURL("PUBLIC_BASE_URL is not set, so Twilio could not be told where to reach Threadline")


def absolute_url(path: str) -> str:
    """The absolute URL of path (such as /voice/incoming?x=1) on Threadline's public address."""
    return public_base() + path


def origin(url: str) -> str:
    """The scheme, host and port of url, as a browser names an origin (in CSP and CORS)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
