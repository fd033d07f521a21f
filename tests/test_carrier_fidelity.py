"""The fidelity suite: apps written for it (an IVR, call forwarding, a warm transfer) run through the carrier with
scripted phones, and receive exactly the requests, parameters and outcomes Twilio's docs describe."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from flask import Flask

from carrier.server import CarrierServer
from tests.support.carrier import CUSTOMER, SUPPORT, Served, finished, heard, script, timeline, wait_until
from tests.support.fidelity import FIRST_AGENT, SECOND_AGENT, STANDARD, Log, forwarding, ivr, warm_transfer


@pytest.fixture
def log(carrier: CarrierServer) -> Log:
    return Log(carrier.state.auth_token)


@pytest.fixture
def serve(carrier: CarrierServer, twilio: Any, log: Log) -> Iterator[Callable[..., str]]:
    """Serve an app and point the support number's VoiceUrl (and status callback) at it, through the REST API."""
    served: list[Served] = []

    def start(build: Callable[[Log], Flask], path: str) -> str:
        served.append(Served(build(log)))
        url = served[-1].url
        number = twilio.incoming_phone_numbers.list(phone_number=SUPPORT)[0]
        number.update(voice_url=f"{url}{path}", status_callback=f"{url}/status")
        return url

    yield start
    for server in served:
        server.stop()
    assert log.requests and all(r.signed for r in log.requests), [r.path for r in log.requests if not r.signed]


def call_in(carrier: CarrierServer) -> str:
    """The customer dials the support number."""
    answer = requests.post(f"{carrier.url}/_carrier/inbound", json={"from": CUSTOMER, "to": SUPPORT}, timeout=5)
    assert answer.status_code == 201, answer.text
    return answer.json()["sid"]


def only_the_numbers_callback(log: Log, sid: str, *asked: str) -> None:
    """The number's status callback hears the call complete, once; nothing but `asked` was asked to be called
    back, so nothing else is."""
    [done] = wait_until(lambda: log.to("/status"))
    assert (done.form["CallSid"], done.form["CallStatus"], done.form["CallbackSource"]) == (
        sid, "completed", "call-progress-events")
    assert [r for r in log.requests if r.callback and r.path not in ("/status", *asked)] == []


# --- an IVR phone tree ----------------------------------------------------------------------------------------

def test_ivr_walks_the_tree_with_the_digits_pressed_and_dials_the_department(carrier, serve, log):
    serve(ivr, "/welcome")
    script(carrier, CUSTOMER, keys=["2", "3"], hangup_after=600)
    script(carrier, FIRST_AGENT, hangup_after=20)
    sid = call_in(carrier)
    call = finished(carrier, sid)

    assert log.twiml_paths() == ["/welcome", "/menu", "/department", "/dialled"]
    welcome, menu, department, dialled = (log.to(p)[0].form for p in log.twiml_paths())
    for form in (welcome, menu, department, dialled):
        assert set(STANDARD) <= set(form) and (form["CallSid"], form["Direction"]) == (sid, "inbound")
        assert (form["From"], form["To"]) == (CUSTOMER, SUPPORT)
    # The first request is made while the call rings; the rest once it is answered.
    assert welcome["CallStatus"] == "ringing" and "Digits" not in welcome
    assert [f["CallStatus"] for f in (menu, department, dialled)] == ["in-progress"] * 3
    assert (menu["Digits"], department["Digits"]) == ("2", "3")
    [agent] = call["legs"]
    assert (agent["to"], agent["status"], agent["parent_call_sid"]) == (FIRST_AGENT, "completed", sid)
    assert (dialled["DialCallStatus"], dialled["DialCallSid"]) == ("completed", agent["sid"])
    assert int(dialled["DialCallDuration"]) > 0
    assert heard(call)[-1] == "Connecting you now." and call["status"] == "completed"
    only_the_numbers_callback(log, sid)


def test_ivr_starts_over_after_a_wrong_key_then_ends_after_the_hours(carrier, serve, log):
    serve(ivr, "/welcome")
    script(carrier, CUSTOMER, keys=["9", "1"], hangup_after=600)
    sid = call_in(carrier)
    call = finished(carrier, sid)
    assert log.twiml_paths() == ["/welcome", "/menu", "/welcome", "/menu"]
    assert [r.form["Digits"] for r in log.to("/menu")] == ["9", "1"]
    assert "Sorry, that is not an option." in heard(call)
    assert heard(call)[-1] == "We are open nine to five, Monday to Friday. Goodbye."
    assert call["status"] == "completed" and call["legs"] == []
    only_the_numbers_callback(log, sid)


# --- call forwarding -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("answer", ["human", "busy", "no-answer", "failed"])
def test_forwarding_reports_how_the_forwarded_leg_ended(carrier, serve, log, answer):
    serve(forwarding, "/forward")
    script(carrier, CUSTOMER, hangup_after=600)
    script(carrier, FIRST_AGENT, answer=answer, hangup_after=15)
    sid = call_in(carrier)
    call = finished(carrier, sid)

    assert log.twiml_paths() == ["/forward", "/forwarded"]
    [agent] = call["legs"]
    dial_status = "completed" if answer == "human" else answer
    assert (agent["from"], agent["to"], agent["status"]) == (SUPPORT, FIRST_AGENT, dial_status)
    forwarded = log.to("/forwarded")[0].form
    assert (forwarded["DialCallStatus"], forwarded["DialCallSid"]) == (dial_status, agent["sid"])
    assert forwarded["CallStatus"] == "in-progress"
    if answer == "human":
        assert int(forwarded["DialCallDuration"]) > 0 and heard(call) == []
    else:
        assert forwarded["DialCallDuration"] == "0"
        assert heard(call) == [f"The agent is unavailable ({answer}). Please call again later."]
    only_the_numbers_callback(log, sid)


# --- a warm transfer ------------------------------------------------------------------------------------------

def test_a_warm_transfer_moves_the_caller_to_the_second_agent_watched_by_status_callbacks(carrier, twilio, serve,
                                                                                         log):
    url = serve(warm_transfer, "/incoming")
    script(carrier, CUSTOMER, hangup_after=3000)
    script(carrier, FIRST_AGENT, ring_seconds=1)  # stays on until the transfer takes the caller away
    script(carrier, SECOND_AGENT, ring_seconds=2, hangup_after=30)
    sid = call_in(carrier)
    wait_until(lambda: any(e["kind"] == "bridged" for e in timeline(carrier, sid)["events"]), message="bridge")
    twilio.calls(sid).update(url=f"{url}/transfer")  # the first agent hands the caller over
    call = finished(carrier, sid)

    # A redirect ends the Dial without its action (/first-done is never requested).
    assert log.twiml_paths() == ["/incoming", "/whisper/first", "/transfer", "/whisper/second", "/transferred"]
    first, second = call["legs"]
    assert [(leg["to"], leg["status"]) for leg in (first, second)] == [(FIRST_AGENT, "completed"),
                                                                       (SECOND_AGENT, "completed")]
    for whisper, leg in ((log.to("/whisper/first")[0].form, first), (log.to("/whisper/second")[0].form, second)):
        assert (whisper["CallSid"], whisper["ParentCallSid"]) == (leg["sid"], sid)
        assert (whisper["Direction"], whisper["From"], whisper["To"]) == ("outbound-dial", CUSTOMER, leg["to"])
    assert log.to("/transfer")[0].form["CallSid"] == sid
    transferred = log.to("/transferred")[0].form
    assert (transferred["DialCallStatus"], transferred["DialCallSid"]) == ("completed", second["sid"])
    said = [text for text in heard(call) if not text.startswith("(")]  # not the ringing during each whisper
    assert said == ["Please wait while we connect you.", "Transferring you to a specialist.",
                    "Thank you for calling. Goodbye."]

    # Only the second agent's leg asked for status callbacks: each event, in order, numbered from 0.
    watched = [r.form for r in wait_until(lambda: len(log.to("/transfer/status")) == 4 and log.to("/transfer/status"))]
    assert [w["CallStatus"] for w in watched] == ["initiated", "ringing", "in-progress", "completed"]
    assert [w["StatusCallbackEvent"] for w in watched] == ["initiated", "ringing", "answered", "completed"]
    assert [w["SequenceNumber"] for w in watched] == ["0", "1", "2", "3"]
    assert {(w["CallSid"], w["ParentCallSid"], w["CallbackSource"]) for w in watched} == {
        (second["sid"], sid, "call-progress-events")}
    assert watched[-1]["CallDuration"] == second["duration"]
    only_the_numbers_callback(log, sid, "/transfer/status")
