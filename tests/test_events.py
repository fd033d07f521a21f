"""Outbound events: signatures, delivery through a real RQ worker to a real HTTP receiver, retries, the API."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from rq import SimpleWorker

from context.events import (
    EVENT_TYPES,
    Outbox,
    get_event,
    mark_delivered,
    mark_failed,
    sign,
    undeliverable_events,
    verify,
)
from tests.support.api import thread_body
from tests.support.events import SECRET, Receiver, work_until


@pytest.fixture
def events_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch, receiver: tuple[Receiver, str]) -> str:
    """The worker's environment names the receiver (as the Procfile worker's would)."""
    monkeypatch.setenv("THREADLINE_WEBHOOK_URL", receiver[1])
    monkeypatch.setenv("THREADLINE_WEBHOOK_SECRET", SECRET)
    return receiver[1]


def outbox(app: Flask, url: str | None = None, secret: str | None = SECRET, **options: Any) -> Outbox:
    return Outbox(app.extensions["threadline.redis"], app.extensions["threadline.queue"], url, secret, **options)


def state_of(app: Flask, event_id: str) -> str:
    record = get_event(app.extensions["threadline.redis"], event_id)
    assert record is not None
    return record.delivery


# --- signatures -------------------------------------------------------------------------------------------------

def test_sign_and_verify_with_the_documented_recipe():
    body = b'{"id":"ev_1","type":"call.completed"}'
    header = sign(SECRET, 1_700_000_000, body)
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify(SECRET, header, body, now=1_700_000_100)
    assert verify(SECRET, f"{header},v1=00ff", body, now=1_700_000_000)  # a second signature (secret rotation)
    assert not verify(SECRET, header, body + b" ", now=1_700_000_000)  # tampered body
    assert not verify("another-secret", header, body, now=1_700_000_000)
    assert not verify(SECRET, header, body, now=1_700_000_301)  # stale
    assert not verify(SECRET, header, body, now=1_699_999_699)  # from the future
    for malformed in ("", "garbage", f"v1={expected}", "t=1700000000", "t=abc,v1=00", f"t=1700000000;v1={expected}",
                      f"t=1,t=1700000000,v1={expected}", "t=\u00b2,v1=00"):
        assert not verify(SECRET, malformed, body, now=1_700_000_000), malformed
    assert not verify("", sign("", 1_700_000_000, body), body, now=1_700_000_000)


# --- delivery ---------------------------------------------------------------------------------------------------

def test_delivered_first_time_signed_with_the_exact_body(events_app, receiver, worker_env):
    state, url = receiver
    box = outbox(events_app, url)
    event = box.emit("t-1", "call.completed", {"duration": 312, "agent": "Sam",
                                               "recording_url": "https://rec.example.com/RE1"},
                     "Your call with Sam ended after 5 minutes.")
    assert state_of(events_app, event.id) == "pending"
    assert not box.enqueue(event.id)  # the same event again: one job, one send
    work_until(box.queue, lambda: state_of(events_app, event.id) == "delivered")

    assert len(state.hits) == 1
    hit = state.hits[0]
    assert hit["valid"] and hit["event_id"] == event.id and hit["content_type"] == "application/json"
    assert hit["body"] == {"id": event.id, "type": "call.completed", "thread_id": "t-1",
                           "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
                           "data": {"duration": 312, "agent": "Sam", "recording_url": "https://rec.example.com/RE1"},
                           "message": "Your call with Sam ended after 5 minutes."}
    record = get_event(events_app.extensions["threadline.redis"], event.id)
    assert record is not None and record.attempts == 1 and record.last_error is None and record.delivered_at


def test_failing_twice_then_delivered_after_scheduled_retries(events_app, receiver, worker_env):
    state, url = receiver
    state.fail_next = 2
    box = outbox(events_app, url, retry_intervals=[1, 1, 1, 1])  # retries go through the RQ scheduler
    event = box.emit("t-1", "call.attempt_failed", {"attempt": 1}, "We tried to call you but couldn't get through.")
    work_until(box.queue, lambda: state_of(events_app, event.id) == "delivered")

    assert [hit["valid"] for hit in state.hits] == [True, True, True]
    record = get_event(events_app.extensions["threadline.redis"], event.id)
    assert record is not None and record.attempts == 3
    assert record.last_error == "HTTP 503: try later"  # why the earlier attempts failed, kept
    assert not undeliverable_events(events_app.extensions["threadline.redis"])


def test_always_failing_ends_undeliverable_kept_and_listed(events_app, receiver, worker_env, client_for):
    state, url = receiver
    state.always_fail = True
    box = outbox(events_app, url, retry_intervals=[0, 1, 0])
    event = box.emit("t-1", "callback.exhausted", {"attempts": 3}, "We couldn't reach you after 3 tries.")
    work_until(box.queue, lambda: state_of(events_app, event.id) == "undeliverable")
    time.sleep(0.2)
    SimpleWorker([box.queue], connection=box.queue.connection).work(burst=True, with_scheduler=True)

    assert len(state.hits) == 4  # the first try and three retries, then no more
    record = get_event(events_app.extensions["threadline.redis"], event.id)
    assert record is not None and record.attempts == 4 and record.last_error == "HTTP 503: try later"
    listed = client_for(events_app).get("/api/v1/events/undeliverable")
    assert listed.status_code == 200
    [shown] = listed.get_json()["events"]
    assert shown["id"] == event.id and shown["delivery"] == "undeliverable" and shown["attempts"] == 4
    assert shown["message"] == "We couldn't reach you after 3 tries."


def test_a_stalled_receiver_is_recorded_by_the_failure_callback(events_app, receiver, worker_env):
    state, url = receiver
    state.stall = 3
    box = outbox(events_app, url, retry_intervals=[0], job_timeout=1)
    event = box.emit("t-1", "call.connected", {"agent": "Sam"}, "You're now connected with Sam.")
    work_until(box.queue, lambda: state_of(events_app, event.id) == "undeliverable")

    record = get_event(events_app.extensions["threadline.redis"], event.id)
    assert record is not None and record.attempts == 2
    assert record.last_error is not None and record.last_error.startswith("JobTimeoutException")


def test_a_worker_without_the_webhook_settings_records_why(events_app, receiver, monkeypatch):
    monkeypatch.delenv("THREADLINE_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("THREADLINE_WEBHOOK_SECRET", raising=False)
    box = outbox(events_app, receiver[1], retry_intervals=[])
    event = box.emit("t-1", "callback.canceled", {}, "Your callback has been canceled.")
    work_until(box.queue, lambda: state_of(events_app, event.id) == "undeliverable")
    record = get_event(events_app.extensions["threadline.redis"], event.id)
    assert record is not None and "THREADLINE_WEBHOOK_URL" in (record.last_error or "")
    assert receiver[0].hits == []


def test_without_a_webhook_events_are_kept_as_not_configured(events_app):
    box = outbox(events_app, None, None)
    event = box.emit("t-1", "callback.scheduled", {"at": "2026-11-22T15:00:00Z"}, "We'll call you at 3 pm.")
    assert state_of(events_app, event.id) == "not_configured"
    assert len(box.queue) == 0 and box.queue.scheduled_job_registry.count == 0
    with pytest.raises(ValueError, match="unknown event type"):
        box.emit("t-1", "call.exploded", {}, "?")
    assert len(EVENT_TYPES) == 11  # the callbacks issue's eight, call.disposition, call.recording_ready, call.feedback


def test_record_keeping_never_double_marks(events_app):
    client = events_app.extensions["threadline.redis"]
    event = outbox(events_app, "http://127.0.0.1:9/unused").emit("t-1", "call.voicemail_left", {}, "We left a message.")
    assert mark_failed(client, event.id, "HTTP 500", final=False)
    assert mark_delivered(client, event.id)
    assert not mark_delivered(client, event.id)  # a racing second success changes nothing
    assert not mark_failed(client, event.id, "late failure", final=True)  # nor does a late failure
    record = get_event(client, event.id)
    assert record is not None and record.delivery == "delivered" and record.attempts == 2
    assert record.last_error == "HTTP 500" and not undeliverable_events(client)
    assert not mark_failed(client, "ev_missing", "x", final=True) and get_event(client, "ev_missing") is None


# --- the API ----------------------------------------------------------------------------------------------------

@pytest.fixture
def client_for(auth: dict[str, str]) -> Callable[[Flask], Any]:
    """A test client that sends the API key."""

    def make(app: Flask) -> Any:
        test_client = app.test_client()
        test_client.environ_base["HTTP_AUTHORIZATION"] = auth["Authorization"]
        return test_client

    return make


def test_thread_events_newest_first_with_delivery_state(events_app, client_for):
    api = client_for(events_app)
    assert api.put("/api/v1/threads/t-1", json=thread_body()).status_code == 201
    box = outbox(events_app, None, None)
    first = box.emit("t-1", "callback.scheduled", {"at": "2026-11-22T15:00:00Z"}, "We'll call you at 3 pm.")
    time.sleep(0.002)
    second = box.emit("t-1", "callback.rescheduled", {"at": "2026-11-22T16:00:00Z"}, "We'll call you at 4 pm.")
    box.emit("t-2", "callback.canceled", {}, "Canceled.")

    listed = api.get("/api/v1/threads/t-1/events")
    assert listed.status_code == 200
    shown = listed.get_json()["events"]
    assert [e["id"] for e in shown] == [second.id, first.id]
    assert shown[0]["type"] == "callback.rescheduled" and shown[0]["delivery"] == "not_configured"
    assert shown[0]["thread_id"] == "t-1" and shown[0]["attempts"] == 0 and shown[0]["last_error"] is None
    assert [e["id"] for e in api.get("/api/v1/threads/t-1/events?limit=1").get_json()["events"]] == [second.id]
    assert api.get("/api/v1/threads/t-1/events?limit=0").status_code == 422

    # A thread with no events yet answers an empty list; an unknown one 404; a bad id 422.
    assert api.put("/api/v1/threads/t-3", json=thread_body()).status_code == 201
    assert api.get("/api/v1/threads/t-3/events").get_json() == {"events": []}
    missing = api.get("/api/v1/threads/nope/events")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    assert api.get("/api/v1/threads/%20bad/events").status_code == 422
    assert api.get("/api/v1/events/undeliverable").get_json() == {"events": []}


def test_events_api_needs_a_key_and_is_documented(events_app):
    anonymous = events_app.test_client()
    for path in ("/api/v1/threads/t-1/events", "/api/v1/events/undeliverable"):
        assert anonymous.get(path).status_code == 401
        assert anonymous.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    doc = anonymous.get("/api/v1/openapi.json").get_json()
    assert "get" in doc["paths"]["/threads/{thread_id}/events"]
    assert "Threadline-Signature" in doc["paths"]["/events/undeliverable"]["get"]["description"]
    assert "EventRecord" in doc["components"]["schemas"]
