"""Every Redis key name Threadline uses, in one place."""

from __future__ import annotations

PREFIX = "tl"


def thread(thread_id: str) -> str:
    """Hash: a thread's attributes (doc JSON, phone, status, times)."""
    return f"{PREFIX}:thread:{thread_id}"


def thread_messages(thread_id: str) -> str:
    """Hash: message id -> message JSON."""
    return f"{PREFIX}:thread:{thread_id}:messages"


def thread_message_order(thread_id: str) -> str:
    """Sorted set: message ids scored by sent_at (epoch ms)."""
    return f"{PREFIX}:thread:{thread_id}:order"


def thread_logs(thread_id: str) -> str:
    """List: log entry JSON, oldest first."""
    return f"{PREFIX}:thread:{thread_id}:logs"


def phone_threads(e164: str, *, resolved: bool) -> str:
    """Sorted set: a phone's open (or resolved) thread ids scored by last activity (epoch ms)."""
    return f"{PREFIX}:phone:{e164}:{'resolved' if resolved else 'open'}"
