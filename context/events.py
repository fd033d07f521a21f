"""Outbound events: every change to a thread's calls, sent to the messaging platform as a signed, retried webhook.

Each event is kept in Redis with its delivery state, whatever happens to the webhook: "pending" while RQ tries,
"delivered" after a 2xx answer, "undeliverable" once every retry has failed (then also listed under
keys.UNDELIVERED_EVENTS), "not_configured" when no webhook URL and secret are set. Delivery is at least once:
receivers should de-duplicate on the event id (also sent as the Threadline-Event-Id header).

An event is written in the same Redis transaction as the change it reports (the stores' scripts call
write_events, see WRITE_EVENTS), so there is never a change without its event. Its delivery job is queued after
that transaction; an event still pending whose job is gone (a process died in between) is queued again by
`Outbox.redeliver`, which the clock's sweep runs.

Verifying a delivery (the recipe; `verify` below implements it):

1. Read the header `Threadline-Signature: t=<unix seconds>,v1=<hex>` (there may be several v1 entries).
2. Compute HMAC-SHA256 with the shared secret (THREADLINE_WEBHOOK_SECRET) as key over the bytes
   `<t>` + `.` + the raw request body, exactly as received (do not re-serialise the JSON), and hex-encode it.
3. Accept when a v1 value equals it (compare in constant time) and |now - t| is at most 300 seconds.

    expected = hmac.new(secret.encode(), f"{t}.".encode() + raw_body, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(expected, v1) and abs(time.time() - t) <= 300
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Literal

import redis
import requests
from pydantic import BaseModel, Field
from rq import Callback, Queue, Retry, get_current_job
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job

from core import keys, logs
from core.config import load as load_config
from core.extensions import Shared
from core.liveness import job_in_hand
from core.metrics import UNDELIVERABLE_EVENTS

log = logging.getLogger(__name__)

class EventType(StrEnum):
    """What changed, as the messaging platform receives it in an event's type."""

    callback_scheduled = "callback.scheduled"
    callback_rescheduled = "callback.rescheduled"
    callback_canceled = "callback.canceled"
    call_attempt_failed = "call.attempt_failed"
    call_voicemail_left = "call.voicemail_left"
    call_connected = "call.connected"
    call_completed = "call.completed"
    callback_exhausted = "callback.exhausted"
    call_disposition = "call.disposition"
    call_feedback = "call.feedback"
    call_recording_ready = "call.recording_ready"


EVENT_TYPES: tuple[str, ...] = tuple(EventType)
Delivery = Literal["pending", "delivered", "undeliverable", "not_configured"]

SIGNATURE_HEADER = "Threadline-Signature"
EVENT_ID_HEADER = "Threadline-Event-Id"
RETRY_INTERVALS = (10, 30, 60, 300, 900, 1800, 3600, 7200)  # seconds before retry 1..8
REQUEST_TIMEOUT = 10  # seconds, for connecting and for each read
JOB_TIMEOUT = 60  # seconds one delivery attempt may take in the worker
SIGNATURE_TOLERANCE = 300  # seconds a signed timestamp stays acceptable
REDELIVER_AFTER = 10  # seconds a pending event may wait for its job to be queued before the sweep queues it


class Event(BaseModel):
    """What the messaging platform receives: the change, on which thread, and a sentence for the customer."""

    id: str = Field(default_factory=lambda: "ev_" + secrets.token_hex(12))
    type: EventType
    thread_id: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    data: dict[str, Any] = Field(default_factory=dict)
    message: str = Field(description="a ready-to-post sentence for the customer")


class EventRecord(Event):
    """An event with its delivery state."""

    delivery: Delivery
    attempts: int = Field(description="delivery attempts made so far")
    last_error: str | None = Field(default=None, description="why the latest failed attempt failed")
    delivered_at: datetime | None = None


class DeliveryFailed(Exception):
    """A delivery attempt failed (already recorded on the event); RQ retries the job while retries are left."""


# --- signatures ---------------------------------------------------------------------------------------------------

def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The Threadline-Signature header value for body sent at timestamp (unix seconds)."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, now: int | None = None, tolerance: int = SIGNATURE_TOLERANCE) -> bool:
    """Whether header signs body with secret at a timestamp within tolerance seconds of now."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in (header or "").split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if name == "t":
            if not (value.isascii() and value.isdigit()) or timestamp is not None:
                return False
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates or not secret:
        return False
    now = int(time.time()) if now is None else now
    if abs(now - timestamp) > tolerance:
        return False
    expected = _digest(secret, timestamp, body).encode()
    matches = [hmac.compare_digest(expected, candidate.encode()) for candidate in candidates]
    return any(matches)


# --- storage ------------------------------------------------------------------------------------------------------

# Writes events inside the script of the change they report, so both are written or neither. KEYS from k: the
# pending index, then each event's hash and its thread's events; ARGV from a: how many events, then each one's id,
# body JSON, delivery and creation (epoch ms). A script ends with `write_events(k, a)` once its change is made.
WRITE_EVENTS = """
local function write_events(k, a)
  for i = 0, tonumber(ARGV[a]) - 1 do
    local id, delivery, score = ARGV[a + 1 + 4 * i], ARGV[a + 3 + 4 * i], ARGV[a + 4 + 4 * i]
    redis.call('HSET', KEYS[k + 1 + 2 * i], 'body', ARGV[a + 2 + 4 * i], 'delivery', delivery, 'attempts', 0,
               'last_error', '', 'delivered_at', '')
    redis.call('ZADD', KEYS[k + 2 + 2 * i], score, id)
    if delivery == 'pending' then redis.call('ZADD', KEYS[k], score, id) end
  end
end
"""
_WRITE = WRITE_EVENTS + "write_events(1, 1)\nreturn 1"

# Both marks are single Lua scripts, so a retry racing another delivery of the same event can never double-mark:
# "delivered" is final, a failure never overrides it, attempts only ever grow by one per recorded attempt.
# KEYS: the event, the undeliverable list, the pending index.
_MARK_DELIVERED = """
local delivery = redis.call('HGET', KEYS[1], 'delivery')
if not delivery or delivery == 'delivered' then return 0 end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'delivery', 'delivered', 'delivered_at', ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
"""
_MARK_FAILED = """
local delivery = redis.call('HGET', KEYS[1], 'delivery')
if not delivery or delivery == 'delivered' then return 0 end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'last_error', ARGV[1])
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'delivery', 'undeliverable')
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  redis.call('ZREM', KEYS[3], ARGV[4])
end
return 1
"""


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _fields(raw: dict[Any, Any]) -> dict[str, str]:
    return {_text(name): _text(value) for name, value in raw.items()}


def _record(fields: dict[str, str]) -> EventRecord:
    return EventRecord.model_validate({
        **json.loads(fields["body"]), "delivery": fields["delivery"], "attempts": int(fields.get("attempts") or 0),
        "last_error": fields.get("last_error") or None, "delivered_at": fields.get("delivered_at") or None})


def get_event(client: redis.Redis, event_id: str) -> EventRecord | None:
    """The event with its delivery state, or None."""
    fields = _fields(client.hgetall(keys.event(event_id)))
    return _record(fields) if fields else None


def _records(client: redis.Redis, ids: Sequence[str | bytes]) -> list[EventRecord]:
    with client.pipeline(transaction=False) as pipe:
        for event_id in ids:
            pipe.hgetall(keys.event(_text(event_id)))
        rows = pipe.execute()
    return [_record(_fields(row)) for row in rows if row]


def thread_events(client: redis.Redis, thread_id: str, limit: int = 100) -> list[EventRecord]:
    """A thread's events with their delivery state, newest first."""
    return _records(client, client.zrevrange(keys.thread_events(thread_id), 0, limit - 1))


def undeliverable_events(client: redis.Redis, limit: int = 100) -> list[EventRecord]:
    """Events that exhausted their retries, most recently given up first."""
    return _records(client, client.zrevrange(keys.UNDELIVERED_EVENTS, 0, limit - 1))


def mark_delivered(client: redis.Redis, event_id: str) -> bool:
    """Record the event delivered, once: False when it already was (a racing retry) or is gone."""
    done = client.eval(_MARK_DELIVERED, 3, keys.event(event_id), keys.UNDELIVERED_EVENTS, keys.PENDING_EVENTS,
                       datetime.now(UTC).isoformat().replace("+00:00", "Z"), event_id)
    return bool(done)


def mark_failed(client: redis.Redis, event_id: str, error: str, *, final: bool) -> bool:
    """Record a failed try (final: no retry left, so it is listed undeliverable); False once it was delivered."""
    done = client.eval(_MARK_FAILED, 3, keys.event(event_id), keys.UNDELIVERED_EVENTS, keys.PENDING_EVENTS, error[:500],
                       "1" if final else "0", int(time.time() * 1000), event_id)
    if done and final:
        UNDELIVERABLE_EVENTS.inc()
        log.error("event %s is undeliverable after its last retry: %s", event_id, error)
    return bool(done)


def job_id(event_id: str) -> str:
    """The RQ job id that delivers event_id (one job per event)."""
    return f"deliver-{event_id}"


def new_event(thread_id: str, type: EventType | str, data: dict[str, Any], message: str) -> Event:
    """An event of a known type on the thread (not written yet: a store writes it with its change)."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r} (one of {', '.join(EVENT_TYPES)})")
    return Event.model_validate({"type": type, "thread_id": thread_id, "data": data, "message": message})


@dataclass(frozen=True)
class Staged:
    """Events as a script writes them with write_events: the KEYS and ARGV to append to the script's own."""

    events: Sequence[Event]
    keys: list[str]
    args: list[str | int]


class Outbox:
    """Writes events beside the changes they report, queues their delivery, and queues again what was lost."""

    def __init__(self, redis: redis.Redis, queue: Queue, url: str | None, secret: str | None, *,
                 retry_intervals: Sequence[int] = RETRY_INTERVALS, job_timeout: int = JOB_TIMEOUT) -> None:
        self.redis, self.queue, self.url, self.secret = redis, queue, url, secret
        self.retry_intervals = list(retry_intervals)
        self.job_timeout = job_timeout
        self._write = redis.register_script(_WRITE)

    @property
    def configured(self) -> bool:
        return bool(self.url and self.secret)

    def stage(self, events: Sequence[Event]) -> Staged:
        """The KEYS and ARGV that make a script write these events (pending, or not_configured without a URL)."""
        delivery = "pending" if self.configured else "not_configured"
        staged = Staged(events, [keys.PENDING_EVENTS], [len(events)])
        for event in events:
            staged.keys.extend([keys.event(event.id), keys.thread_events(event.thread_id)])
            staged.args.extend([event.id, event.model_dump_json(), delivery, int(event.created_at.timestamp() * 1000)])
        return staged

    def write(self, events: Sequence[Event], pipe: redis.client.Pipeline | None = None) -> Staged:
        """Write events by themselves, or inside pipe's transaction beside the change they report."""
        staged = self.stage(events)
        self._write(keys=staged.keys, args=staged.args, client=pipe)
        return staged

    def send(self, staged: Staged) -> None:
        """Once the transaction that wrote them is done: queue each delivery (the sweep queues what this misses)."""
        for event in staged.events:
            if not self.configured:
                log.warning("event %s (%s) kept undelivered: THREADLINE_WEBHOOK_URL/SECRET are not set",
                            event.id, event.type)
                continue
            try:
                self.enqueue(event.id)
            except redis.RedisError:
                log.exception("event %s is written; its delivery is queued by the next sweep", event.id)

    def emit(self, thread_id: str, type: EventType | str, data: dict[str, Any], message: str) -> Event:
        """Record an event that is a change by itself on the thread, and queue its delivery."""
        event = new_event(thread_id, type, data, message)
        self.send(self.write([event]))
        return event

    def enqueue(self, event_id: str) -> bool:
        """Queue the delivery job; False when that event's job already exists (so it can't be sent twice)."""
        retry = Retry(max=len(self.retry_intervals), interval=self.retry_intervals) if self.retry_intervals else None
        try:
            self.queue.enqueue(deliver, event_id, job_id=job_id(event_id), unique=True,
                               retry=retry, on_failure=Callback("context.events.record_failure"),
                               job_timeout=self.job_timeout, description=f"deliver event {event_id}")
        except DuplicateJobError:
            return False
        return True

    def redeliver(self, now: datetime, after: float = REDELIVER_AFTER, limit: int = 500) -> int:
        """Queue again the delivery of events pending since `after` s before now whose job is gone: how many."""
        queued = 0
        for event_id in self.redis.zrangebyscore(keys.PENDING_EVENTS, "-inf", (now.timestamp() - after) * 1000,
                                                 start=0, num=limit):
            if self._delivering(event_id):
                continue
            if self.redis.hget(keys.event(event_id), "delivery") != "pending":
                self.redis.zrem(keys.PENDING_EVENTS, event_id)  # settled (or gone) since it was listed
                continue
            if self.enqueue(event_id):
                log.info("event %s: its delivery job was lost, queued again", event_id)
                queued += 1
        return queued

    def _delivering(self, event_id: str) -> bool:
        """Whether the event's job is queued, waiting for a retry or run by a live worker; one that ended without
        settling the event, or whose worker died, is removed."""
        try:
            job = Job.fetch(job_id(event_id), connection=self.queue.connection)
        except NoSuchJobError:
            return False
        if job_in_hand(self.queue, job):
            return True
        job.delete()  # a new job takes over
        return False


# --- the RQ side --------------------------------------------------------------------------------------------------

def _last_try(job: Job) -> bool:
    """Whether a failure of this run of job ends it (RQ decrements retries_left only after the failure)."""
    return not job.should_retry


def deliver(event_id: str) -> None:
    """RQ job: POST the event, signed, to THREADLINE_WEBHOOK_URL; raise DeliveryFailed so RQ retries."""
    with logs.bound(event_id=event_id):
        _deliver(event_id)


def _deliver(event_id: str) -> None:
    job = get_current_job()
    if job is None:
        raise RuntimeError("deliver runs as an RQ job")
    client: redis.Redis = job.connection
    fields = _fields(client.hgetall(keys.event(event_id)))
    if not fields:
        log.warning("event %s is gone; nothing to deliver", event_id)
        return
    if fields["delivery"] == "delivered":
        return
    config = load_config()
    url, secret = config.get("THREADLINE_WEBHOOK_URL"), config.get("THREADLINE_WEBHOOK_SECRET")
    if not url or not secret:
        error = "THREADLINE_WEBHOOK_URL and THREADLINE_WEBHOOK_SECRET are not set where the worker runs"
    else:
        body = fields["body"].encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, int(time.time()), body),
                   EVENT_ID_HEADER: event_id, "User-Agent": "Threadline-Webhooks/1"}
        try:
            response = requests.post(url, data=body, headers=headers, timeout=REQUEST_TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        else:
            if 200 <= response.status_code < 300:
                mark_delivered(client, event_id)
                return
            error = f"HTTP {response.status_code}: {response.text[:200]}".rstrip(": ")
    mark_failed(client, event_id, error, final=_last_try(job))
    raise DeliveryFailed(error)


def record_failure(job: Job, connection: redis.Redis, exc_type: type[BaseException], exc_value: BaseException,
                   traceback: TracebackType | None) -> None:
    """RQ on_failure callback: record failures deliver could not (job timeout, abandoned job, a bug)."""
    if isinstance(exc_value, DeliveryFailed):
        return  # deliver recorded it already
    mark_failed(connection, str(job.args[0]), f"{exc_type.__name__}: {exc_value}".rstrip(": "),
                 final=_last_try(job))


OUTBOX: Shared[Outbox] = Shared("outbox")
