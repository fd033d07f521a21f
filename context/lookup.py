"""Finding a thread for a request: the app's ThreadStore, a checked thread id, and the one "no such thread" answer."""

from __future__ import annotations

import re

from context.schemas import THREAD_ID_PATTERN, Thread
from context.store import THREADS, ThreadNotFound
from core import keys
from core.api import ApiError

# How an API route documents that 404 (its OpenAPI response).
NO_SUCH_THREAD = ("no thread with that id", None)


def checked_thread_id(thread_id: str) -> str:
    """thread_id when it is well formed, else a 422 naming the field."""
    if not re.match(THREAD_ID_PATTERN, thread_id):
        raise ApiError(422, "invalid_field", f"thread_id: {keys.ID_RULE}", "thread_id")
    return thread_id


def no_such_thread(thread_id: str) -> ApiError:
    """The 404 for a thread id nothing is stored under."""
    return ApiError(404, "not_found", f"no thread with id {thread_id!r}", "thread_id")


def existing_thread(thread_id: str, newest: int | None = None) -> Thread:
    """The stored thread (with its newest messages when newest is given), or the 404 that says there is none."""
    try:
        return THREADS.get().get(checked_thread_id(thread_id), newest=newest)
    except ThreadNotFound:
        raise no_such_thread(thread_id) from None
