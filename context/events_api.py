"""The events API: what Threadline told (or could not tell) the messaging platform, with delivery state."""

from __future__ import annotations

from typing import Annotated

from flask import Blueprint
from pydantic import BaseModel, Field

from context.events import EventRecord, thread_events, undeliverable_events
from context.lookup import NO_SUCH_THREAD, checked_thread_id, no_such_thread
from context.schemas import Strict
from core import keys
from core.api import API_PREFIX, require_api_key
from core.extensions import REDIS
from core.openapi import API

bp = Blueprint("events", __name__, url_prefix=API_PREFIX)
require_api_key(bp)

_DELIVERY = ("Delivery is pending while retries run (exponential backoff, 9 attempts over about 4 hours), "
             "delivered after a 2xx answer, undeliverable once every retry failed, not_configured when no "
             "webhook URL and secret are set. Webhooks carry 'Threadline-Signature: t=<unix seconds>,v1=<hex>': "
             "HMAC-SHA256 with the shared secret over '<t>.' followed by the raw body; accept it when it matches "
             "(constant-time compare) and t is within 5 minutes. De-duplicate on Threadline-Event-Id.")


class EventList(BaseModel):
    events: list[EventRecord]


class EventsQuery(Strict):
    limit: Annotated[int, Field(ge=1, le=500)] = 100


@API.route(bp, "/threads/<thread_id>/events", "GET", query=EventsQuery, summary="A thread's outbound events",
           description="Newest first. " + _DELIVERY,
           responses={200: ("the events with their delivery state", EventList), 404: NO_SUCH_THREAD})
def list_thread_events(thread_id: str, query: EventsQuery) -> tuple[EventList, int]:
    client = REDIS.get()
    events = thread_events(client, checked_thread_id(thread_id), query.limit)
    if not events and not client.exists(keys.thread(thread_id)):
        raise no_such_thread(thread_id)
    return EventList(events=events), 200


@API.route(bp, "/events/undeliverable", "GET", query=EventsQuery, summary="Events whose delivery was given up",
           description="Every retry failed; the events are kept, most recently given up first. " + _DELIVERY,
           responses={200: ("the undeliverable events", EventList)})
def list_undeliverable(query: EventsQuery) -> tuple[EventList, int]:
    client = REDIS.get()
    return EventList(events=undeliverable_events(client, query.limit)), 200
