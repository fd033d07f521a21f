"""Callbacks end to end: the API schedules, a real RQ worker dials through the carrier, the IVR decides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from callbacks.schemas import State
from tests.support.api import AUTH, thread_body
from tests.support.callbacks import ask, callback, work
from tests.support.carrier import AGENT, CUSTOMER, OUTLASTS_AGENT, SUPPORT, TALK, heard, wait_until
from tests.support.voice import ALWAYS, Line, calls_to
from voice import screenpop


def settled(line: Line, callback_id: str, *states: State) -> Any:
    return wait_until(lambda: (c := callback(line, callback_id)).state in states and
                      all(a.outcome for a in c.attempts[:-1]) and c, message=f"callback in {states}")


def test_asked_now_the_customer_is_called_once_and_reaches_an_agent(cb_line):
    cb_line.script(CUSTOMER, keys=["1"], hangup_after=OUTLASTS_AGENT)
    cb_line.script(AGENT, keys=["1"], hangup_after=TALK)
    created = ask(cb_line)
    assert created.status_code == 201
    body = created.get_json()
    assert body["state"] == "scheduled" and body["adjusted"] is None
    work(cb_line)
    call = cb_line.finished(calls_to(cb_line, CUSTOMER)[0]["sid"])
    assert heard(call)[0].startswith("Hi Jane, this is Acme returning your message about App crashes at login.")
    assert call["legs"][0]["to"] == AGENT and heard(call["legs"][0])[0].startswith("Acme call from Jane")
    done = settled(cb_line, body["id"], State.completed)
    assert len(done.attempts) == 1 and done.attempts[0].call_sid == call["sid"]
    client = cb_line.app.test_client()
    completed = wait_until(lambda: [e for e in client.get("/api/v1/threads/t-1/events", headers=AUTH).get_json()[
        "events"] if e["type"] == "call.completed"])[0]
    assert completed["data"]["agent_id"] == "sam" and int(completed["data"]["duration"]) > 0
    assert len(calls_to(cb_line, CUSTOMER)) == 1
    work(cb_line)  # nothing left to do: still exactly one call
    assert len(calls_to(cb_line, CUSTOMER)) == 1


def test_asking_again_names_the_live_callback_and_changes_nothing(cb_line):
    first = ask(cb_line).get_json()
    again = cb_line.app.test_client().post("/api/v1/threads/t-1/callbacks", headers=AUTH,
                                           json={"when": "tomorrow at 3pm", "number": SUPPORT})
    assert again.status_code == 409
    error = again.get_json()["error"]
    assert (error["code"], error["field"]) == ("callback_exists", "thread_id")
    assert error["details"] == [{"callback_id": first["id"], "state": "scheduled"}]
    assert f"PATCH /api/v1/callbacks/{first['id']}" in error["message"]
    listed = cb_line.app.test_client().get("/api/v1/threads/t-1/callbacks", headers=AUTH).get_json()["callbacks"]
    assert [(c["id"], c["scheduled_for"]) for c in listed] == [(first["id"], first["scheduled_for"])]


@pytest.mark.parametrize("answer", ["busy", "no-answer"])
def test_an_unreachable_customer_is_retried_later_inside_the_window(cb_line, answer):
    cb_line.script(CUSTOMER, answer=answer)
    body = ask(cb_line).get_json()
    work(cb_line)
    retried = settled(cb_line, body["id"], State.scheduled)
    wait_until(lambda: callback(cb_line, body["id"]).attempts[0].outcome)
    retried = callback(cb_line, body["id"])
    assert retried.attempts[0].outcome == answer
    assert retried.scheduled_for >= datetime.now(UTC) + timedelta(minutes=8)  # 10 minutes, with jitter
    assert len(calls_to(cb_line, CUSTOMER)) == 1


def test_the_last_failed_attempt_exhausts_the_callback(cb_line):
    cb_line.number(calling_window=ALWAYS, max_attempts=1)
    cb_line.script(CUSTOMER, answer="busy")
    body = ask(cb_line).get_json()
    work(cb_line)
    assert settled(cb_line, body["id"], State.exhausted).reason == "no answer after 1 attempts"


def test_a_machine_gets_a_short_voicemail_and_a_retry(cb_line):
    cb_line.script(CUSTOMER, answer="machine")
    body = ask(cb_line).get_json()
    work(cb_line)
    call = cb_line.finished(calls_to(cb_line, CUSTOMER)[0]["sid"])
    assert heard(call) == ["Hi Jane, this is Acme returning your message about App crashes at login. Sorry we "
                           "missed you. We will try again, or you can reply to us in the app."]
    wait_until(lambda: callback(cb_line, body["id"]).attempts[0].outcome == "machine")
    assert callback(cb_line, body["id"]).state == State.scheduled


def test_pressing_3_cancels(cb_line):
    cb_line.script(CUSTOMER, keys=["3"])
    body = ask(cb_line).get_json()
    work(cb_line)
    done = settled(cb_line, body["id"], State.canceled)
    assert done.reason == "no longer needed"
    call = cb_line.finished(calls_to(cb_line, CUSTOMER)[0]["sid"])
    assert heard(call)[-1] == "Glad it's sorted. Goodbye."


def test_pressing_2_books_one_of_three_later_times(cb_line):
    cb_line.script(CUSTOMER, keys=["2", "2"])
    body = ask(cb_line).get_json()
    work(cb_line)
    call = cb_line.finished(calls_to(cb_line, CUSTOMER)[0]["sid"])
    offers = heard(call)[1:5]
    assert offers[0] == "When should we call you?" and all(o.startswith("For ") for o in offers[1:])
    moved = settled(cb_line, body["id"], State.scheduled)
    assert heard(call)[-1] == f"We will call you {moved.customer_local_time}. Goodbye."
    assert offers[2] == f"For {moved.customer_local_time}, press 2."
    assert moved.attempts[0].outcome == "rescheduled"


def test_cancel_and_reschedule_through_the_api(cb_line):
    client = cb_line.app.test_client()
    body = ask(cb_line, when="in 3 days").get_json()
    moved = client.patch(f"/api/v1/callbacks/{body['id']}", json={"when": "in 4 days"}, headers=AUTH)
    assert moved.status_code == 200 and moved.get_json()["scheduled_for"] > body["scheduled_for"]
    canceled = client.delete(f"/api/v1/callbacks/{body['id']}", json={"reason": "solved in chat"}, headers=AUTH)
    assert canceled.status_code == 200 and canceled.get_json()["state"] == "canceled"
    assert client.delete(f"/api/v1/callbacks/{body['id']}", headers=AUTH).status_code == 409
    work(cb_line)  # the stale dial jobs find nothing to do
    assert calls_to(cb_line, CUSTOMER) == []
    listed = client.get("/api/v1/threads/t-1/callbacks", headers=AUTH).get_json()["callbacks"]
    assert [c["state"] for c in listed] == ["canceled"]


def test_bad_requests_name_their_field(cb_line):
    client = cb_line.app.test_client()
    for body, field in (({"when": "someday maybe"}, "when"), ({"when": "2020-01-01T10:00:00Z"}, "when"),
                        ({"when": "in 40 days"}, "when"), ({"number": "+14155550999"}, "number"),
                        ({"mode": "robot_first"}, "mode"), ({"agent_id": "nobody"}, "agent_id")):
        response = client.post("/api/v1/threads/t-1/callbacks", json={"number": SUPPORT, **body}, headers=AUTH)
        assert (response.status_code, response.get_json()["error"]["field"]) == (422, field), body
    assert client.post("/api/v1/threads/nope/callbacks", json={"number": SUPPORT},
                       headers=AUTH).status_code == 404


def test_a_time_outside_the_callees_window_is_moved_and_says_so(cb_line):
    cb_line.number(calling_window={"start": "08:00", "end": "21:00"})
    client = cb_line.app.test_client()
    response = client.post("/api/v1/threads/t-1/callbacks", headers=AUTH,
                           json={"number": SUPPORT, "when": "tomorrow at 11pm"})
    body = response.get_json()
    assert response.status_code == 201 and body["adjusted"]["reason"]
    local = datetime.fromisoformat(body["scheduled_for"]).astimezone(ZoneInfo("America/Los_Angeles"))
    assert (local.hour, local.minute) == (8, 0)


def test_a_customer_calling_in_cancels_the_pending_callback(cb_line):
    body = ask(cb_line, when="in 3 days").get_json()
    cb_line.script(CUSTOMER, keys=["1"])
    cb_line.script(AGENT, keys=["1"], hangup_after=5)
    cb_line.finished(cb_line.call_in(CUSTOMER))
    assert callback(cb_line, body["id"]).state == State.canceled


def test_resolving_the_thread_cancels_the_pending_callback(cb_line):
    body = ask(cb_line, when="in 3 days").get_json()
    client = cb_line.app.test_client()
    assert client.put("/api/v1/threads/t-1", json=thread_body(status="resolved"), headers=AUTH).status_code == 200
    assert callback(cb_line, body["id"]).state == State.canceled


def test_slots_list_the_bookable_half_hours_of_a_day_in_the_customers_zone(cb_line):
    cb_line.number(calling_window={"start": "08:00", "end": "21:00"},
                   business_hours={day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")})
    client = cb_line.app.test_client()
    response = client.get("/api/v1/numbers/%2B14155550100/slots?date=2030-01-07&tz=America/Los_Angeles",
                          headers=AUTH)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    la = ZoneInfo("America/Los_Angeles")
    starts = [datetime.fromisoformat(s["start"]).astimezone(la) for s in body["slots"]]
    # New York opens 09:00-17:00 = 06:00-14:00 in Los Angeles; the callee's window starts at 08:00 there.
    assert (starts[0].hour, starts[0].minute) == (8, 0) and (starts[-1].hour, starts[-1].minute) == (13, 30)
    assert len(starts) == 12 and body["time_zone"] == "America/Los_Angeles"
    assert body["slots"][0]["local_time"] == "January 7 at 8 AM"
    weekend = client.get("/api/v1/numbers/%2B14155550100/slots?date=2030-01-05", headers=AUTH).get_json()
    assert weekend["slots"] == []
    bad = client.get("/api/v1/numbers/%2B14155550100/slots?date=someday", headers=AUTH)
    assert (bad.status_code, bad.get_json()["error"]["field"]) == (422, "query.date")


def test_agent_first_rings_the_agent_who_then_has_the_customer_dialled(cb_line, redis_client):
    cb_line.script(AGENT, keys=["1"], hangup_after=400)
    cb_line.script(CUSTOMER, hangup_after=30)
    body = ask(cb_line, mode="agent_first", agent_id="sam").get_json()
    work(cb_line)
    agent_call = cb_line.finished(calls_to(cb_line, AGENT)[0]["sid"])
    assert heard(agent_call)[0] == ("Acme callback for Jane about App crashes at login. Last message: The app closes "
                                    "as soon as I log in. Press 1 to call them now.")
    customer_leg = agent_call["legs"][0]
    assert customer_leg["to"] == CUSTOMER
    assert heard(customer_leg)[0].startswith("Hi Jane, this is Acme returning your message about App crashes")
    done = settled(cb_line, body["id"], State.completed)
    assert done.attempts[0].outcome == "completed"
    assert len(screenpop.recent(redis_client, "sam", 10)) == 1  # the screen popped once, ringing then answered


def test_agent_first_pops_the_thread_while_the_agents_phone_rings(cb_line, redis_client):
    cb_line.script(AGENT, answer="no-answer")  # the agent never answers: whatever popped, popped while it rang
    body = ask(cb_line, mode="agent_first", agent_id="sam").get_json()
    work(cb_line)
    wait_until(lambda: callback(cb_line, body["id"]).attempts and callback(cb_line, body["id"]).attempts[0].outcome)
    [pop] = screenpop.recent(redis_client, "sam", 10)
    assert pop.thread_id == "t-1" and pop.call_sid == calls_to(cb_line, AGENT)[0]["sid"]


@pytest.mark.parametrize(("agent", "customer", "outcome"), [
    ({"keys": ["1"], "hangup_after": 400}, {"answer": "busy"}, "busy"),
    ({"keys": ["9"]}, {}, "agent-declined"),
    ({"answer": "no-answer"}, {}, "agent-unavailable"),
])
def test_agent_first_outcomes_are_retried(cb_line, agent, customer, outcome):
    cb_line.script(AGENT, **agent)
    if customer:
        cb_line.script(CUSTOMER, **customer)
    body = ask(cb_line, mode="agent_first").get_json()
    work(cb_line)
    wait_until(lambda: callback(cb_line, body["id"]).attempts and callback(cb_line, body["id"]).attempts[0].outcome)
    retried = callback(cb_line, body["id"])
    assert (retried.attempts[0].outcome, retried.state) == (outcome, State.scheduled)


def test_a_number_that_does_not_exist_stops_at_once(cb_line):
    cb_line.script(CUSTOMER, answer="unassigned")
    body = ask(cb_line).get_json()
    work(cb_line)
    failed = settled(cb_line, body["id"], State.failed)
    assert failed.attempts[0].outcome == "invalid" and len(failed.attempts) == 1


def test_every_change_goes_back_into_the_thread(cb_line):
    cb_line.number(calling_window=ALWAYS, max_attempts=2)
    cb_line.script(CUSTOMER, answer="busy")
    body = ask(cb_line).get_json()
    work(cb_line)
    client = cb_line.app.test_client()
    events = wait_until(lambda: len(e := client.get("/api/v1/threads/t-1/events", headers=AUTH).get_json()[
        "events"]) == 2 and e)
    assert [e["type"] for e in events] == ["call.attempt_failed", "callback.scheduled"]
    assert events[0]["message"].startswith("We tried to call you and couldn't reach you. We'll try again ")
    assert events[0]["data"]["callback_id"] == body["id"] and events[0]["thread_id"] == "t-1"
    assert events[1]["delivery"] == "not_configured"  # no THREADLINE_WEBHOOK_URL here: kept, not lost


@pytest.mark.parametrize(("phone", "why"), [
    ("+19005550123", "not a mobile or fixed line"),  # premium-rate
    ("+18002000000", "not a mobile or fixed line"),  # toll-free
    ("+447400123456", "is in GB, not in US")])  # another country than the number's
def test_a_callback_calls_only_a_persons_line_in_an_allowed_country(cb_line, phone, why):
    response = cb_line.app.test_client().post("/api/v1/threads/t-1/callbacks", headers=AUTH,
                                              json={"when": "asap", "number": SUPPORT, "phone": phone})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["field"] == "phone" and why in error["message"]
    assert cb_line.app.test_client().get("/api/v1/threads/t-1/callbacks", headers=AUTH).get_json() == {
        "callbacks": []}


def test_a_number_may_allow_other_countries_and_other_lines_of_them(cb_line):
    cb_line.number(callback_countries=["US", "GB"])
    assert ask(cb_line, phone="+447400123456").status_code == 201


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00",
                                   "0001-01-01T00:00:00", "9999-12-31T23:59:59"])
def test_a_callback_time_at_the_edge_of_the_calendar_is_refused_naming_when(cb_line, stamp):
    response = cb_line.app.test_client().post("/api/v1/threads/t-1/callbacks", headers=AUTH,
                                              json={"number": SUPPORT, "when": stamp})
    assert (response.status_code, response.get_json()["error"]["field"]) == (422, "when")


@pytest.mark.parametrize("day", ["0001-01-01", "0001-01-02", "9999-12-30", "9999-12-31"])
@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_slots_on_the_first_or_last_day_of_the_calendar_do_not_fail(cb_line, day, tz):
    response = cb_line.app.test_client().get(f"/api/v1/numbers/%2B14155550100/slots?date={day}&tz={tz}",
                                             headers=AUTH)
    assert response.status_code in (200, 422), response.get_data(as_text=True)
    if response.status_code == 422:
        assert response.get_json()["error"]["field"] == "query.date"
