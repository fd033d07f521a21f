"""Redis away (a restart, a failover, a network blip): which errors say so, and how the web answers meanwhile."""

from __future__ import annotations

import logging
from html import escape

import redis
from flask import Response, request
from redis.exceptions import MasterDownError, ReadOnlyError

from core.metrics import REDIS_ERRORS

log = logging.getLogger(__name__)

# Connection refused or dropped, the server still loading its AOF (BusyLoadingError is a ConnectionError), a
# command timed out, or a replica not yet promoted: all pass without anyone's help, so each is answered "try again".
OUTAGE_ERRORS: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError, ReadOnlyError,
                                              MasterDownError)
# Seconds a client is asked to wait: about what a Redis restart from its AOF or a failover takes.
RETRY_AFTER_SECONDS = 5
MESSAGE = "Threadline cannot reach its database (Redis) right now; try again in a few seconds"

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Threadline is briefly unavailable</title></head>
<body>
<h1>Threadline is briefly unavailable</h1>
<p>{message}.</p>
<p>Nothing you saved is lost. Reload this page in a moment.</p>
</body>
</html>
"""


def is_outage(exc: BaseException | None) -> bool:
    """Whether exc, or an error it was raised from, says Redis is away for now (not a bug of ours)."""
    seen = 0
    while exc is not None and seen < 8:  # a bounded walk: a cause chain can loop
        if isinstance(exc, OUTAGE_ERRORS):
            return True
        exc, seen = exc.__cause__, seen + 1
    return False


def reason(exc: BaseException) -> str:
    """The error's first line, fit for a one-line log entry."""
    text = str(exc).splitlines()[0].strip() if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def note(exc: BaseException, answer: str) -> None:
    """One log line and one count per request Redis's absence failed (no traceback: the cause is known and passes)."""
    REDIS_ERRORS.labels(type(exc).__name__).inc()
    log.warning("Redis unavailable: %s %s answered %s (%s)", request.method, request.path, answer, reason(exc))


def with_retry_after(response: Response) -> Response:
    """response, telling its client when to ask again."""
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def unavailable_page(exc: BaseException) -> Response:
    """A 503 page in words, for a person in a browser."""
    note(exc, "a 503 page")
    page = _PAGE.format(message=escape(MESSAGE))
    return with_retry_after(Response(page, status=503, mimetype="text/html"))
