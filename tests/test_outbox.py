"""Events that cannot be lost: each is written in the transaction of the change it reports, the clock's sweep queues
the delivery of any that a dying process never queued, and the platform receives every event exactly once."""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import requests
from flask import Flask
from rq import Queue
from rq.job import Job

from callbacks import dialer, lifecycle
from callbacks.recovery import sweep
from callbacks.schemas import State
from context.events import REDELIVER_AFTER, EventRecord, EventType, Outbox, job_id, thread_events
from core import keys
from tests.support.api import AUTH
from tests.support.callbacks import ask, callback, work
from tests.support.carrier import AGENT, CUSTOMER, OUTLASTS_AGENT, TALK, wait_until
from tests.support.desk import HTML, sign_in, token_of, with_password
from tests.support.events import SECRET, Receiver, work_until
from tests.support.voice import ALWAYS, Line


@pytest.fixture
def line_config(receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Events go to the platform's receiver, from the app and from the worker that delivers them."""
    monkeypatch.setenv("THREADLINE_WEBHOOK_URL", receiver[1])
    monkeypatch.setenv("THREADLINE_WEBHOOK_SECRET", SECRET)
    return {"THREADLINE_WEBHOOK_URL": receiver[1], "THREADLINE_WEBHOOK_SECRET": SECRET}


def later() -> datetime:
    """A moment past the time an event may wait for its delivery job before the sweep queues it."""
    return datetime.now(UTC) + timedelta(seconds=REDELIVER_AFTER + 1)


@contextmanager
def queue_down(app: Flask) -> Iterator[None]:
    """No delivery job can be queued (the queue refuses connections): as when a process dies right after the
    transaction that wrote a change and its events."""
    outbox: Outbox = app.extensions["threadline.outbox"]
    kept = outbox.queue
    outbox.queue = Queue(kept.name, connection=redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1))
    try:
        yield
    finally:
        outbox.queue = kept


def written(app: Flask, thread_id: str = "t-1") -> list[EventRecord]:
    return thread_events(app.extensions["threadline.redis"], thread_id)


def pending(app: Flask) -> set[str]:
    """The ids in the outbox's index of events to deliver."""
    return set(app.extensions["threadline.redis"].zrange(keys.PENDING_EVENTS, 0, -1))


def queued(app: Flask, event_id: str) -> bool:
    return Job.exists(job_id(event_id), connection=app.extensions["threadline.queue"].connection)


def answered(line: Line) -> bool:
    """Every call of the line ended and its final status callback was answered: no handler is still at work (one
    would queue its events' delivery after queue_down ended)."""
    calls = requests.get(f"{line.carrier.url}/_carrier/calls", timeout=5).json()["calls"]
    ended = ("completed", "busy", "failed", "no-answer", "canceled")
    return bool(calls) and all(
        call["status"] in ended and any(hook["kind"] == "status" and hook["params"].get("CallStatus") in ended
                                        for hook in call["webhooks"])
        for call in calls if call.get("status_callback") or any(h["kind"] == "status" for h in call["webhooks"]))


def stranded(app: Flask) -> list[EventRecord]:
    """The thread's events, each checked to be written and waiting, with no delivery job queued."""
    events = written(app)
    assert events and all(e.delivery == "pending" and e.attempts == 0 for e in events)
    assert pending(app) == {e.id for e in events}
    assert not any(queued(app, e.id) for e in events)
    return events


def swept_and_delivered(app: Flask, receiver: tuple[Receiver, str], events: list[EventRecord]) -> None:
    """The clock's sweep queues each event once; a worker delivers each exactly once; nothing is left to send."""
    platform, _ = receiver
    with app.app_context():
        assert sweep(later())["redelivered"] == len(events)
        assert sweep(later())["redelivered"] == 0  # its job is queued now: not queued again
    queue = app.extensions["threadline.queue"]
    work_until(queue, lambda: len(platform.hits) >= len(events))
    work_until(queue, lambda: True)  # one more burst: anything queued twice would be sent now
    assert Counter(h["event_id"] for h in platform.hits) == Counter(e.id for e in events)
    assert all(h["valid"] for h in platform.hits)
    assert {h["body"]["id"]: h["body"]["type"] for h in platform.hits} == {e.id: e.type for e in events}
    assert {e.delivery for e in written(app)} == {"delivered"} and pending(app) == set()
    with app.app_context():
        assert sweep(later())["redelivered"] == 0


# --- by construction: the change and its event, together ---------------------------------------------------------

def test_the_api_s_changes_keep_their_events_when_no_delivery_could_be_queued(cb_line, receiver):
    client = cb_line.app.test_client()
    with queue_down(cb_line.app):
        body = ask(cb_line, when="in 3 days").get_json()
        assert client.patch(f"/api/v1/callbacks/{body['id']}", json={"when": "in 4 days"},
                            headers=AUTH).status_code == 200
        assert client.delete(f"/api/v1/callbacks/{body['id']}", json={"reason": "solved in chat"},
                             headers=AUTH).status_code == 200
        assert client.delete(f"/api/v1/callbacks/{body['id']}", headers=AUTH).status_code == 409  # no change, no event
    events = stranded(cb_line.app)
    assert [e.type for e in events] == ["callback.canceled", "callback.rescheduled", "callback.scheduled"]
    assert all(e.data["callback_id"] == body["id"] for e in events)
    swept_and_delivered(cb_line.app, receiver, events)


# Each flow: the number's settings, what the phones do, the events it writes (one of each).
FLOWS = {
    "busy, retried": ({"max_attempts": 2}, {CUSTOMER: {"answer": "busy"}},
                      ["callback.scheduled", "call.attempt_failed"]),
    "busy, the last attempt": ({"max_attempts": 1}, {CUSTOMER: {"answer": "busy"}},
                               ["callback.scheduled", "callback.exhausted"]),
    "a voicemail": ({}, {CUSTOMER: {"answered_by": "machine_end_beep"}},
                    ["callback.scheduled", "call.voicemail_left", "call.attempt_failed"]),
    "put through": ({}, {CUSTOMER: {"keys": ["1"], "hangup_after": 300}, AGENT: {"keys": ["1"], "hangup_after": 20}},
                    ["callback.scheduled", "call.connected", "call.completed"]),
    "another time": ({}, {CUSTOMER: {"keys": ["2", "2"]}}, ["callback.scheduled", "callback.rescheduled"]),
    "no longer needed": ({}, {CUSTOMER: {"keys": ["3"]}},
                         ["callback.scheduled", "callback.canceled", "call.completed"]),
}


@pytest.mark.parametrize("flow", FLOWS)
def test_each_change_of_a_call_keeps_its_event_when_no_delivery_could_be_queued(cb_line, receiver, flow):
    number, phones, expected = FLOWS[flow]
    cb_line.number(calling_window=ALWAYS, **number)
    for phone, behaviour in phones.items():
        cb_line.script(phone, **behaviour)
    with queue_down(cb_line.app):
        callback_id = ask(cb_line).get_json()["id"]
        work(cb_line)
        wait_until(lambda: (c := callback(cb_line, callback_id)).attempts and c.attempts[0].outcome
                   and Counter(e.type for e in written(cb_line.app)) >= Counter(expected), message=flow)
        wait_until(lambda: answered(cb_line), message="every call's last status callback answered")
    events = stranded(cb_line.app)
    assert sorted(e.type for e in events) == sorted(expected)
    swept_and_delivered(cb_line.app, receiver, events)


def test_a_recording_and_a_disposition_keep_their_events_when_no_delivery_could_be_queued(line, receiver):
    line.number(record_calls=True)
    line.thread("t-1")
    line.script(CUSTOMER, keys=["1"], hangup_after=OUTLASTS_AGENT)
    line.script(AGENT, keys=["1"], hangup_after=TALK)
    with_password(line.app)
    sam = line.app.test_client()
    with queue_down(line.app):
        sid = line.call_in(CUSTOMER)
        line.finished(sid)
        wait_until(lambda: [e for e in written(line.app) if e.type == "call.recording_ready"])
        sign_in(sam)
        token = token_of(sam.get("/desk/threads/t-1", headers=HTML))
        assert sam.post("/desk/threads/t-1/disposition", headers=HTML,
                        data={"disposition": "resolved", "csrf_token": token}).status_code == 302
    events = stranded(line.app)
    assert [e.type for e in events] == ["call.disposition", "call.recording_ready"]
    assert events[0].data["call_sid"] == sid and events[1].data["call_sid"] == sid
    assert [s.kind for s in line.history(sid).steps].count("disposition") == 1
    swept_and_delivered(line.app, receiver, events)


def test_a_change_that_lost_the_race_writes_no_event_and_its_retry_writes_one(cb_line):
    app = cb_line.app
    store = app.extensions["threadline.callbacks"]
    callback_id = ask(cb_line, when="in 3 days").get_json()["id"]
    tries: list[int] = []

    def cancel_after_a_concurrent_move(current: Any) -> Any:
        tries.append(len(tries) + 1)
        if len(tries) == 1:  # another process moves the callback between this read and this write
            store.update(callback_id, functools.partial(
                lifecycle.reschedule, when=current.scheduled_for + timedelta(days=1), adjusted=None,
                now=datetime.now(UTC)), announce=lambda moved: [dialer.news(moved, EventType.callback_rescheduled,
                                                                            "moved meanwhile")])
        return lifecycle.cancel(current, reason="solved")

    canceled = store.update(callback_id, cancel_after_a_concurrent_move, announce=lambda done: [
        dialer.news(done, EventType.callback_canceled, f"canceled on try {len(tries)}")])
    assert canceled.state == State.canceled and tries == [1, 2]
    assert [(e.type, e.message) for e in written(app)][:2] == [("callback.canceled", "canceled on try 2"),
                                                               ("callback.rescheduled", "moved meanwhile")]
    assert len(written(app)) == 3 and pending(app) == {e.id for e in written(app)}
    store.update(callback_id, functools.partial(lifecycle.cancel, reason="again"), announce=lambda done: [
        dialer.news(done, EventType.callback_canceled, "never")])  # Unchanged: already canceled
    assert len(written(app)) == 3


def resent_once(app: Flask, platform: Receiver, event: EventRecord) -> None:
    """The next sweep queues the event again, the one after leaves it, and the platform gets it once."""
    assert sweep(later())["redelivered"] == 1
    assert sweep(later())["redelivered"] == 0
    work_until(app.extensions["threadline.queue"], lambda: platform.hits)
    assert [h["event_id"] for h in platform.hits] == [event.id]
    assert written(app)[0].delivery == "delivered" and pending(app) == set()


# --- the sweep ----------------------------------------------------------------------------------------------------

def test_an_event_whose_job_is_gone_is_sent_again_exactly_once(cb_line, receiver):
    app, platform = cb_line.app, receiver[0]
    body = ask(cb_line, when="in 3 days").get_json()
    [event] = written(app)
    queue = app.extensions["threadline.queue"]
    with app.app_context():
        assert sweep(later())["redelivered"] == 0  # its job waits in the queue: left alone
    Job.fetch(job_id(event.id), connection=queue.connection).delete()  # lost, say with the Redis it was queued on
    outboxes = [app.extensions["threadline.outbox"]] * 6  # six clocks sweeping at once
    found: list[int] = []
    threads = [threading.Thread(target=lambda box=box: found.append(box.redeliver(later()))) for box in outboxes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(found) == [0, 0, 0, 0, 0, 1]
    work_until(queue, lambda: platform.hits)
    work_until(queue, lambda: True)
    assert [h["event_id"] for h in platform.hits] == [event.id] and platform.hits[0]["body"]["data"][
        "callback_id"] == body["id"]
    assert written(app)[0].delivery == "delivered" and pending(app) == set()


def test_an_event_whose_job_ended_without_delivering_it_is_sent_again(cb_line, receiver):
    app, platform = cb_line.app, receiver[0]
    ask(cb_line, when="in 3 days")
    [event] = written(app)
    queue = app.extensions["threadline.queue"]
    Job.fetch(job_id(event.id), connection=queue.connection).cancel()  # ended: the event is still pending
    assert queued(app, event.id) and written(app)[0].delivery == "pending"
    with app.app_context():
        resent_once(app, platform, event)


def test_an_event_whose_worker_died_mid_delivery_is_sent_again_once_its_heartbeat_lapses(cb_line, receiver):
    """Found by the chaos suite: a delivery job a SIGKILLed worker had started stayed "started" until rq's own
    maintenance, minutes later, and the platform never heard of the change in time."""
    app, platform = cb_line.app, receiver[0]
    ask(cb_line, when="in 3 days")
    [event] = written(app)
    queue = app.extensions["threadline.queue"]
    job = Job.fetch(job_id(event.id), connection=queue.connection)
    with queue.connection.pipeline() as pipe:  # what a worker writes as it starts the job
        job.prepare_for_execution("worker-that-dies", pipe)
        pipe.execute()
    heartbeat = app.extensions["threadline.redis"]
    heartbeat.set(keys.worker_alive("worker-that-dies"), "1")
    with app.app_context():
        assert sweep(later())["redelivered"] == 0  # its worker still beats: it is delivering
        heartbeat.delete(keys.worker_alive("worker-that-dies"))  # SIGKILL: the beat lapses
        resent_once(app, platform, event)


def test_an_undeliverable_event_leaves_the_index_and_is_not_sent_again(cb_line, receiver):
    app, platform = cb_line.app, receiver[0]
    platform.always_fail = True
    outbox: Outbox = app.extensions["threadline.outbox"]
    outbox.retry_intervals = [0]  # one retry, at once
    ask(cb_line, when="in 3 days")
    work_until(app.extensions["threadline.queue"], lambda: written(app)[0].delivery == "undeliverable")
    assert len(platform.hits) == 2 and pending(app) == set()
    with app.app_context():
        assert sweep(later())["redelivered"] == 0
