"""The API key the test apps accept and a complete thread body to PUT."""

from __future__ import annotations

from typing import Any

API_KEY = "test-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def thread_body(**changes: Any) -> dict[str, Any]:
    """A complete PUT body in the documented shape, with top-level fields replaced by changes."""
    body: dict[str, Any] = {
        "subject": "App crashes at login",
        "status": "open",
        "customer": {"id": "u-123", "name": "Jane Doe", "phone": "+1 415 555 0123", "email": "jane@example.com",
                     "locale": "en-US", "time_zone": "America/Los_Angeles"},
        "device": {"platform": "iOS", "os_version": "17.2", "app_version": "3.2.1", "model": "iPhone 14"},
        "metadata": {"plan": "pro", "order_id": "A-1009"},
        "messages": [{"id": "m1", "author": "customer", "name": "Jane", "text": "The app closes as soon as I log in",
                      "sent_at": "2026-11-22T10:00:00Z",
                      "attachments": [{"name": "crash.png", "url": "https://files.example.com/crash.png",
                                       "content_type": "image/png"}]}],
        "logs": [{"at": "2026-11-22T09:59:58Z", "level": "error",
                  "message": "NullPointerException in LoginViewController"}],
    }
    body.update(changes)
    return body
