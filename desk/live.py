"""The desk's live screen pops: Server-Sent Events fed by Redis pub/sub, caught up from the agent's stream."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator

import redis
from flask import Response, abort, request, session, stream_with_context

from core import outage
from core.extensions import REDIS
from desk import bp
from desk.auth import current_agent_id, desk_sessions, login_required
from voice import screenpop

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15
# A Redis stream id: milliseconds, optionally "-" and a sequence; 19 digits each stay inside 64 bits.
_STREAM_ID = re.compile(r"[0-9]{1,19}(?:-[0-9]{1,19})?")


def _frame(entry_id: str, payload: str) -> str:
    return f"id: {entry_id}\nevent: screen_pop\ndata: {payload}\n\n"


def stream(redis_client: redis.Redis, agent_id: str, last_id: str | None,
           signed_in: Callable[[], bool] = lambda: True) -> Iterator[str]:
    """Subscribe first, then replay what the stream holds after last_id, then go live, skipping replayed ids;
    end within a second of signed_in() turning false (sign-out, a new password, the agent removed), and cleanly,
    in one log line, when Redis goes away."""
    try:
        yield from _events(redis_client, agent_id, last_id, signed_in)
    except outage.OUTAGE_ERRORS as exc:
        # The page reconnects with the last id it saw (desk.js), and misses nothing the agent's stream kept.
        log.warning("Redis unavailable: the desk event stream of %s ended (%s)", agent_id, outage.reason(exc))


def _events(redis_client: redis.Redis, agent_id: str, last_id: str | None,
            signed_in: Callable[[], bool]) -> Iterator[str]:
    pubsub = screenpop.listen(redis_client, agent_id)
    try:
        seen = last_id or "0-0"
        if last_id:
            for entry_id, event in screenpop.since(redis_client, agent_id, last_id):
                seen = entry_id
                yield _frame(entry_id, event)
        yield ": connected\n\n"
        beat = time.monotonic()
        while True:
            message = pubsub.get_message(timeout=1.0)
            if not signed_in():
                return
            if message is None:  # nothing yet (or a subscription notice): keep proxies from closing an idle stream
                if time.monotonic() - beat >= KEEPALIVE_SECONDS:
                    beat = time.monotonic()
                    yield ": keepalive\n\n"
                continue
            event = json.loads(message["data"])
            entry_id = event.get("id") or ""
            if entry_id and _not_after(entry_id, seen):
                continue
            seen = entry_id or seen
            yield _frame(entry_id, message["data"])
    finally:
        pubsub.close()


def _not_after(entry_id: str, seen: str) -> bool:
    """Stream ids compare as (ms, seq)."""
    def parts(value: str) -> tuple[int, int]:
        ms, _, seq = value.partition("-")
        return int(ms), int(seq or 0)
    return parts(entry_id) <= parts(seen)


@bp.get("/events")
@login_required
def events() -> Response:
    """The agent's live events; a reconnecting page sends Last-Event-ID and gets what it missed first."""
    agent_id = current_agent_id() or ""
    last_id = request.headers.get("Last-Event-ID") or request.args.get("after")
    if last_id and not _STREAM_ID.fullmatch(last_id):
        name = "Last-Event-ID" if request.headers.get("Last-Event-ID") else "after"
        abort(400, description=f"{name} must be the id of an event this stream sent, such as 1700000000000-0")
    sessions, session_id = desk_sessions(), session.get("sid", "")
    body = stream(REDIS.get(), agent_id, last_id, lambda: sessions.agent_of(session_id) == agent_id)
    return Response(stream_with_context(body), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
