"""The desk's live screen pops: Server-Sent Events fed by the process's fan-out, caught up from the agent's stream."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import redis
from flask import Response, abort, request, session, stream_with_context

from core import outage
from core.extensions import REDIS
from core.metrics import DESK_STREAMS
from desk import bp
from desk.auth import current_agent_id, login_required
from desk.fanout import Fanout, Listener, Signal
from voice import screenpop

log = logging.getLogger(__name__)

CONNECT_SECONDS = 10  # how long a new stream waits for the process's subscription before it gives up
# A Redis stream id: milliseconds, optionally "-" and a sequence; 19 digits each stay inside 64 bits.
_STREAM_ID = re.compile(r"[0-9]{1,19}(?:-[0-9]{1,19})?")


def _frame(entry_id: str, payload: str) -> str:
    return f"id: {entry_id}\nevent: screen_pop\ndata: {payload}\n\n"


def stream(redis_client: redis.Redis, agent_id: str, last_id: str | None,
           session_id: str | None = None) -> Iterator[str]:
    """Join the process's fan-out first, then replay what the agent's stream holds after last_id, then go live,
    skipping replayed ids; end within a second or so of the session ending (sign-out, a new password, the agent
    removed; None: not checked), and cleanly, in one log line, when Redis goes away."""
    fanout = Fanout.of(redis_client)
    listener = fanout.open(agent_id, session_id)
    DESK_STREAMS.inc()
    try:
        yield from _events(redis_client, listener, last_id)
    except outage.OUTAGE_ERRORS as exc:
        # The page reconnects with the last id it saw (desk.js), and misses nothing the agent's stream kept.
        log.warning("Redis unavailable: the desk event stream of %s ended (%s)", agent_id, outage.reason(exc))
    finally:
        DESK_STREAMS.dec()
        fanout.close(listener)


def _events(redis_client: redis.Redis, listener: Listener, last_id: str | None) -> Iterator[str]:
    if not listener.live.wait(CONNECT_SECONDS):
        log.warning("Redis unavailable: the desk event stream of %s ended (no subscription after %d s)",
                    listener.agent_id, CONNECT_SECONDS)
        return
    seen = last_id or "0-0"
    if last_id:
        for entry_id, event in screenpop.since(redis_client, listener.agent_id, last_id):
            seen = entry_id
            yield _frame(entry_id, event)
    yield ": connected\n\n"
    while True:
        item = listener.inbox.get()
        if item is Signal.KEEPALIVE:  # the fan-out's timer: keep proxies from closing an idle stream
            yield ": keepalive\n\n"
            continue
        if isinstance(item, Signal):  # signed out, or the subscription lost: the page reconnects and catches up
            return
        entry_id = json.loads(item).get("id") or ""
        if entry_id and _not_after(entry_id, seen):
            continue
        seen = entry_id or seen
        yield _frame(entry_id, item)


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
    body = stream(REDIS.get(), agent_id, last_id, session.get("sid", ""))
    return Response(stream_with_context(body), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
