"""Races around a due callback: concurrent dial jobs, duplicate status callbacks, the shared dial rate."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callbacks import dialer
from callbacks.schemas import State
from callbacks.windows import allowed
from core.redis_server import connect
from tests.support.api import AUTH
from tests.support.callbacks import ask, callback
from tests.support.carrier import CUSTOMER, SUPPORT, wait_until
from tests.support.voice import calls_to, signed_post


def test_dial_jobs_racing_for_one_attempt_place_one_call(cb_line):
    cb_line.script(CUSTOMER, answer="busy")
    body = ask(cb_line).get_json()
    results: list[str] = []

    def run() -> None:
        with cb_line.app.app_context():
            results.append(dialer.dial_attempt(body["id"], 1, datetime.now(UTC)))

    racers = [threading.Thread(target=run) for _ in range(8)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert sum(r.startswith("dialled") for r in results) == 1, results
    wait_until(lambda: callback(cb_line, body["id"]).attempts[0].outcome == "busy")
    assert len(calls_to(cb_line, CUSTOMER)) == 1


def test_a_cancel_that_wins_the_race_leaves_the_due_dial_nothing_to_do(cb_line):
    body = ask(cb_line).get_json()
    client = cb_line.app.test_client()
    assert client.delete(f"/api/v1/callbacks/{body['id']}", headers=AUTH).status_code == 200
    with cb_line.app.app_context():
        assert dialer.dial_attempt(body["id"], 1, datetime.now(UTC)) == "not wanted"
    assert calls_to(cb_line, CUSTOMER) == []


def test_duplicate_and_late_status_callbacks_close_an_attempt_once(cb_line):
    cb_line.script(CUSTOMER, answer="busy")
    body = ask(cb_line).get_json()
    with cb_line.app.app_context():
        dialer.dial_attempt(body["id"], 1, datetime.now(UTC))
    first = wait_until(lambda: (c := callback(cb_line, body["id"])).attempts[0].outcome and c)
    token = cb_line.app.config["TWILIO_AUTH_TOKEN"]
    path = f"/voice/callback/status?cb={body['id']}&attempt=1"
    form = {"CallSid": first.attempts[0].call_sid, "CallStatus": "busy", "SequenceNumber": "9", "To": CUSTOMER,
            "From": SUPPORT, "Direction": "outbound-api"}
    base = cb_line.app.config["PUBLIC_BASE_URL"]
    for _ in range(3):
        response = signed_post(cb_line.app.test_client(), path, form, base=base, token=token)
        assert response.status_code == 204
    after = callback(cb_line, body["id"])
    assert after.attempts == first.attempts and after.scheduled_for == first.scheduled_for
    assert after.state == State.scheduled


def test_the_dial_rate_is_shared_through_redis(cb_line, redis_client, redis_url):
    """Every client takes the next slot of one schedule in Redis: slots are evenly spaced, never two at once."""
    spacing = dialer.RATE_HEADROOM / 2
    clients = [connect(redis_url) for _ in range(3)]  # as separate workers would
    waits = [dialer.reserve_slot(client, 2) for client in clients]
    assert waits[0] == 0  # the first goes now
    assert spacing - 0.25 < waits[1] <= spacing  # the next one slot later, less the moments spent asking
    assert 2 * spacing - 0.25 < waits[2] <= 2 * spacing
    for client in clients:
        client.close()


ZONES = ["America/Los_Angeles", "America/New_York", "Europe/London", "Asia/Kolkata", "Australia/Sydney",
         "America/Sao_Paulo", "Pacific/Auckland"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(zone=st.sampled_from(ZONES), hours=st.integers(min_value=0, max_value=24 * 29))
def test_whatever_is_asked_the_dial_instant_is_inside_the_callees_window(cb_line, zone, hours):
    cb_line.number(calling_window={"start": "08:00", "end": "21:00"},
                   business_hours={day: [["08:00", "20:00"]] for day in ("mon", "tue", "wed", "thu", "fri")})
    cb_line.thread("h-1", customer={"name": "Ann", "phone": "+14155550188", "time_zone": zone})
    when = (datetime.now(UTC) + timedelta(hours=hours, minutes=7)).isoformat()
    response = cb_line.app.test_client().post("/api/v1/threads/h-1/callbacks", headers=AUTH,
                                              json={"number": SUPPORT, "when": when})
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    body = response.get_json()
    number = cb_line.app.extensions["threadline.numbers"].get(SUPPORT)
    assert allowed(datetime.fromisoformat(body["scheduled_for"]), number, zone)
    cb_line.app.test_client().delete(f"/api/v1/callbacks/{body['id']}", headers=AUTH)
