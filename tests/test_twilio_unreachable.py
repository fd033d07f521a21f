"""Twilio out of reach while a callback dials: its claim stays, and the sweep dials it once Twilio is back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callbacks.dialer import dial_attempt
from callbacks.recovery import sweep
from callbacks.schemas import State
from tests.support.callbacks import ask, callback, work
from tests.support.carrier import CUSTOMER, wait_until
from tests.support.processes import free_port
from tests.support.voice import calls_to


def test_a_dial_that_cannot_reach_twilio_is_reconciled_and_placed_once_it_can(cb_line, make_app):
    state = cb_line.carrier.state
    nowhere = make_app(TWILIO_ACCOUNT_SID=state.account_sid, TWILIO_AUTH_TOKEN=state.auth_token,
                       TWILIO_API_BASE_URL=f"http://127.0.0.1:{free_port()}", PUBLIC_BASE_URL=cb_line.url)
    cb_line.script(CUSTOMER, answer="busy")
    asked = ask(cb_line).get_json()
    with nowhere.app_context():
        assert dial_attempt(asked["id"], 1, datetime.now(UTC)) == "Twilio unreachable"
    stranded = callback(cb_line, asked["id"])
    assert stranded.state == State.dialing and stranded.attempts[0].call_sid is None  # the claim stays
    with nowhere.app_context():  # still out of reach: the sweep says so and changes nothing
        assert sweep(datetime.now(UTC) + timedelta(seconds=61)) == {"requeued": 0, "reconciled": 0, "redelivered": 0}
    assert callback(cb_line, asked["id"]).attempts == stranded.attempts

    with cb_line.app.app_context():  # Twilio is back: nothing was placed, so the attempt is dialled again
        assert sweep(datetime.now(UTC) + timedelta(seconds=61))["reconciled"] == 1
    work(cb_line)
    assert len(calls_to(cb_line, CUSTOMER)) == 1
    wait_until(lambda: callback(cb_line, asked["id"]).attempts[0].outcome == "busy", message="the attempt closed")


def test_a_dial_job_refused_by_twilio_is_reconciled_as_soon_as_twilio_is_back(cb_line, monkeypatch):
    """A call due during an outage goes when Twilio returns, not seconds later: a refused request can't reach
    Twilio any more, so its claim needs no waiting before it is adopted or dialled again."""
    cb_line.script(CUSTOMER, answer="busy")
    monkeypatch.setenv("TWILIO_API_BASE_URL", f"http://127.0.0.1:{free_port()}")  # the worker's Twilio is away
    asked = ask(cb_line).get_json()
    work(cb_line)
    assert callback(cb_line, asked["id"]).attempts[0].call_sid is None
    monkeypatch.setenv("TWILIO_API_BASE_URL", cb_line.carrier.url)
    with cb_line.app.app_context():  # a second after the claim: reconciled at once, then dialled
        assert sweep(callback(cb_line, asked["id"]).attempts[0].claimed_at + timedelta(seconds=1))["reconciled"] == 1
    work(cb_line)
    assert len(calls_to(cb_line, CUSTOMER)) == 1
