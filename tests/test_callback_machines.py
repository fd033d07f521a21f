"""Answering machines on callback calls, end to end: AMD's verdict is kept from the answer request, so a machine
is retried though no status callback repeats it, and the sweeper decides an attempt as the webhooks would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from rq import SimpleWorker

from callbacks.lifecycle import claim_token
from callbacks.recovery import sweep
from callbacks.schemas import Attempt, State
from tests.support.api import API_KEY
from tests.support.carrier import CUSTOMER, SUPPORT, heard, wait_until
from tests.support.voice import Line, calls_to

AUTH = {"Authorization": f"Bearer {API_KEY}"}
VOICEMAIL = ("Hi Jane, this is Acme returning your message about App crashes at login. Sorry we missed you. "
             "We will try again, or you can reply to us in the app.")


def _ask(line: Line, when: str = "asap") -> str:
    response = line.app.test_client().post("/api/v1/threads/t-1/callbacks", headers=AUTH,
                                           json={"when": when, "number": SUPPORT})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["id"]


def _work(line: Line) -> None:
    queue = line.app.extensions["threadline.queue"]
    SimpleWorker([queue], connection=queue.connection).work(burst=True, with_scheduler=True)


def _closed(line: Line, callback_id: str) -> Any:
    store = line.app.extensions["threadline.callbacks"]
    return wait_until(lambda: (c := store.get(callback_id)).attempts and c.attempts[0].outcome and c,
                      message="the first attempt closed")


def _status_callbacks(line: Line, sid: str) -> list[dict[str, str]]:
    call = requests.get(f"{line.carrier.url}/_carrier/calls/{sid}", timeout=5).json()
    return [w["params"] for w in call["webhooks"] if w["kind"] == "status"]


@pytest.mark.parametrize(("answered_by", "message"), [("machine_end_beep", True), ("machine_end_silence", True),
                                                      ("machine_end_other", True), ("machine_start", False),
                                                      ("fax", False)])
def test_a_machine_or_fax_is_retried_though_no_status_callback_says_so(cb_line, answered_by, message):
    cb_line.script(CUSTOMER, answered_by=answered_by)
    callback_id = _ask(cb_line)
    _work(cb_line)
    call = cb_line.finished(calls_to(cb_line, CUSTOMER)[0]["sid"])
    assert heard(call) == ([VOICEMAIL] if message else [])
    closed = _closed(cb_line, callback_id)
    assert closed.attempts[0].answered_by == answered_by
    assert closed.attempts[0].outcome == "machine" and closed.state == State.scheduled
    wait_until(lambda: [p for p in _status_callbacks(cb_line, call["sid"]) if p["CallStatus"] == "completed"])
    assert all("AnsweredBy" not in p for p in _status_callbacks(cb_line, call["sid"]))
    events = cb_line.app.test_client().get("/api/v1/threads/t-1/events", headers=AUTH).get_json()["events"]
    kinds = [e["type"] for e in events]
    assert ("call.voicemail_left" in kinds) == message and "call.attempt_failed" in kinds
    assert "call.completed" not in kinds


def test_a_person_amd_could_not_classify_hears_the_greeting(cb_line):
    cb_line.script(CUSTOMER, answered_by="unknown", keys=["3"])
    callback_id = _ask(cb_line)
    _work(cb_line)
    call = cb_line.finished(calls_to(cb_line, CUSTOMER)[0]["sid"])
    assert heard(call)[0].startswith("Hi Jane, this is Acme returning your message")
    assert wait_until(lambda: cb_line.app.extensions["threadline.callbacks"].get(callback_id).state
                      == State.canceled)


def _claimed_call_without_status_callbacks(line: Line, callback_id: str) -> str:
    """Claim the attempt and place its call as the dialer does, but with its status callbacks lost."""
    store, app = line.app.extensions["threadline.callbacks"], line.app

    def claim(callback: Any) -> Any:
        callback.attempts.append(Attempt(number=1, claimed_at=datetime.now(UTC), to=CUSTOMER))
        callback.state = State.dialing
        return callback

    claimed = store.update(callback_id, claim)
    query = f"cb={callback_id}&attempt=1&claim={claim_token(claimed.attempts[0])}"
    twilio = app.extensions["threadline.twilio"]
    call = twilio.calls.create(to=CUSTOMER, from_=SUPPORT, machine_detection="DetectMessageEnd",
                               url=f"{line.url}/voice/callback/answer?{query}")

    def placed(callback: Any) -> Any:
        callback.attempts[0].call_sid = call.sid
        return callback

    store.update(callback_id, placed)
    return call.sid


@pytest.mark.parametrize("script", [{"answered_by": "machine_end_beep"}, {"answered_by": "fax"},
                                    {"answer": "busy"}, {"answer": "no-answer", "ring_seconds": 1}, {},
                                    {"keys": ["2"]}])
def test_the_sweeper_reaches_the_webhooks_outcome_for_the_same_facts(cb_line, script):
    cb_line.script(CUSTOMER, **script)
    by_webhooks = _ask(cb_line)
    _work(cb_line)
    expected = _closed(cb_line, by_webhooks)

    cb_line.app.config.update(RECONCILE_AFTER_SECONDS=0, CALL_CHECK_SECONDS=0)
    store = cb_line.app.extensions["threadline.callbacks"]
    store.update(by_webhooks, lambda c: setattr(c, "state", State.canceled) or c)  # make room for another
    by_sweeper = _ask(cb_line, when="in 3 days")
    sid = _claimed_call_without_status_callbacks(cb_line, by_sweeper)
    wait_until(lambda: cb_line.app.extensions["threadline.twilio"].calls(sid).fetch().status in
               ("completed", "busy", "no-answer", "failed", "canceled"))
    with cb_line.app.app_context():
        sweep(datetime.now(UTC))
    swept = store.get(by_sweeper)
    assert (swept.attempts[0].outcome, swept.state) == (expected.attempts[0].outcome, expected.state)


def test_a_call_whose_status_callbacks_were_lost_is_closed_by_the_sweep_soon_after(cb_line):
    """Measured by the chaos suite: with the web down when Twilio posted them, callbacks stayed dialing 10 minutes."""
    cb_line.script(CUSTOMER, answer="busy")
    store = cb_line.app.extensions["threadline.callbacks"]
    callback_id = _ask(cb_line, when="in 3 days")
    sid = _claimed_call_without_status_callbacks(cb_line, callback_id)
    wait_until(lambda: cb_line.app.extensions["threadline.twilio"].calls(sid).fetch().status == "busy")
    claimed_at = store.get(callback_id).attempts[0].claimed_at
    with cb_line.app.app_context():
        sweep(claimed_at + timedelta(seconds=30))  # its status callbacks may still be on their way: not asked yet
        assert store.get(callback_id).state == State.dialing
        sweep(claimed_at + timedelta(seconds=46))
    closed = store.get(callback_id)
    assert (closed.attempts[0].outcome, closed.state) == ("busy", State.scheduled)  # retried later


def test_reconciling_lists_calls_by_date_and_adopts_none_from_before_the_claim(cb_line):
    app = cb_line.app
    earlier = app.extensions["threadline.twilio"].calls.create(to=CUSTOMER, from_=SUPPORT,
                                                               twiml="<Response><Hangup/></Response>")
    callback_id = _ask(cb_line, when="in 3 days")
    store = app.extensions["threadline.callbacks"]

    def claim(callback: Any) -> Any:  # claimed after that call, and its worker died before dialling
        callback.attempts.append(Attempt(number=1, claimed_at=datetime.now(UTC) + timedelta(seconds=10), to=CUSTOMER))
        callback.state = State.dialing
        return callback

    store.update(callback_id, claim)
    past_reconcile = datetime.now(UTC) + timedelta(seconds=10 + app.config["RECONCILE_AFTER_SECONDS"] + 1)
    with app.app_context():
        assert sweep(past_reconcile)["reconciled"] == 1
    again = store.get(callback_id)
    assert again.state == State.scheduled and again.attempts == []  # redialled, not adopted
    assert store.call_owner(earlier.sid) is None
