"""Screen-pop events for the agent desk: Redis pub/sub for live pages (desk/fanout.py) plus a per-agent stream to
catch up."""

from __future__ import annotations

from datetime import UTC, datetime

import redis
from pydantic import BaseModel

from core import keys

STREAM_LENGTH = 1000
ONCE_SECONDS = 6 * 3600  # how long an agent leg's pop is remembered: longer than any call


class ScreenPop(BaseModel):
    """A call reached an agent: the desk opens the thread."""

    type: str = "screen_pop"
    agent_id: str
    call_sid: str
    agent_call_sid: str | None = None
    thread_id: str | None = None
    at: datetime
    id: str | None = None  # the stream entry id (absent inside the stream entry itself)


def listen(redis_client: redis.Redis, agent_id: str) -> redis.client.PubSub:
    """A subscription to the agent's live screen pops alone (a web process's desks share one: desk/fanout.py)."""
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.screen_pop_channel(agent_id))
    return pubsub


def since(redis_client: redis.Redis, agent_id: str, last_id: str) -> list[tuple[str, str]]:
    """The agent's screen pops after the stream id last_id, oldest first: (id, event JSON)."""
    return [(entry_id, fields["event"])
            for entry_id, fields in redis_client.xrange(keys.screen_pops(agent_id), min=f"({last_id}")]


def recent(redis_client: redis.Redis, agent_id: str, count: int) -> list[ScreenPop]:
    """The agent's newest screen pops, newest first, each with its stream id."""
    entries = redis_client.xrevrange(keys.screen_pops(agent_id), count=count)
    return [ScreenPop.model_validate_json(fields["event"]).model_copy(update={"id": entry_id})
            for entry_id, fields in entries]


def publish(redis_client: redis.Redis, agent_id: str, call_sid: str, agent_call_sid: str | None,
            thread_id: str | None) -> ScreenPop:
    """Record the event on the agent's stream, then announce it to open desks."""
    event = ScreenPop(agent_id=agent_id, call_sid=call_sid, agent_call_sid=agent_call_sid, thread_id=thread_id,
                      at=datetime.now(UTC))
    # The stream entry's id travels with the live message, so a desk that caught up from the stream can skip it.
    event.id = redis_client.xadd(keys.screen_pops(agent_id), {"event": event.model_dump_json()},
                                 maxlen=STREAM_LENGTH, approximate=True)
    redis_client.publish(keys.screen_pop_channel(agent_id), event.model_dump_json())
    return event


def publish_once(redis_client: redis.Redis, agent_id: str, call_sid: str, agent_call_sid: str,
                 thread_id: str | None) -> ScreenPop | None:
    """Publish the pop of this agent leg unless it went out already (its ringing and whisper both ask); else None."""
    if not redis_client.set(keys.screen_pop_sent(agent_call_sid), call_sid, nx=True, ex=ONCE_SECONDS):
        return None
    try:
        return publish(redis_client, agent_id, call_sid, agent_call_sid, thread_id)
    except Exception:
        redis_client.delete(keys.screen_pop_sent(agent_call_sid))  # not sent: the whisper's turn may send it
        raise
