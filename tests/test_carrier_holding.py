"""Queues, conferences and the verbs the carrier does not simulate, through a webhook app of the test's own: callers
wait with the waitUrl until a second call takes them; media streams, SIP, Refer and Pay leave Twilio's debugger
notifications on the call, which goes on as Twilio's docs say."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from flask import Flask, Response, request
from twilio.twiml.voice_response import Connect, Dial, Enqueue, Pay, Start, VoiceResponse

from carrier.server import CarrierServer
from tests.support.carrier import (
    AGENT,
    CUSTOMER,
    SUPPORT,
    KeptApp,
    conforms,
    finished,
    heard,
    saying,
    script,
    timeline,
    twiml,
    wait_until,
)


class Lines(KeptApp):
    """A support line that queues its callers or puts them in a conference; keeps every request it gets."""

    def build(self) -> Flask:
        app = self.flask("lines")

        @app.post("/left")
        def left() -> Response:
            return saying(f"Queue result: {request.form['QueueResult']}.")

        @app.post("/dialled")
        def dialled() -> Response:
            return saying(f"Dial ended: {request.form['DialCallStatus']}.")

        @app.post("/enqueue")
        def enqueue() -> Response:
            response = VoiceResponse()
            wait = "/wait-and-leave" if request.args.get("leave") else "/wait"
            response.append(Enqueue("support", wait_url=wait, action="/left"))
            return twiml(response)

        @app.post("/wait")
        def wait() -> Response:
            response = VoiceResponse()
            response.say(f"You are caller {request.form['QueuePosition']}. Please hold.")
            response.pause(length=5)
            return twiml(response)

        @app.post("/wait-and-leave")
        def wait_and_leave() -> Response:
            response = VoiceResponse()
            response.say("Everyone is busy.")
            response.leave()
            return twiml(response)

        @app.post("/agent")
        def agent() -> Response:
            response = VoiceResponse()
            dial = Dial(action="/dialled", timeout=20)
            dial.queue("support")
            response.append(dial)
            return twiml(response)

        @app.post("/conference")
        def conference() -> Response:
            response = VoiceResponse()
            dial = Dial(action="/dialled")
            dial.conference("standup", wait_url="/conference-wait",
                            end_conference_on_exit=bool(request.args.get("end")))
            response.append(dial)
            return twiml(response)

        @app.post("/conference-wait")
        def conference_wait() -> Response:
            response = VoiceResponse()
            response.gather(num_digits=1)  # not allowed in a conference's waitUrl
            response.say("The others will join you soon.")
            response.play("https://music.example.com/hold.mp3")
            return twiml(response)

        @app.post("/unsimulated")
        def unsimulated() -> Response:
            response = VoiceResponse()
            start = Start()
            start.stream(url="wss://media.example.com/in")
            response.append(start)
            connect = Connect()
            connect.stream(url="wss://media.example.com/bot")
            response.append(connect)
            response.refer().sip("sip:desk@pbx.example.com")
            response.say("Still here.")
            response.append(Pay(action="/paid", charge_amount="10.00"))
            return twiml(response)

        @app.post("/paid")
        def paid() -> Response:
            response = VoiceResponse()
            response.say(f"Payment: {request.form['Result']}.")
            dial = Dial(action="/dialled")
            dial.sip("sip:desk@pbx.example.com")
            response.append(dial)
            return twiml(response)

        return app


@pytest.fixture
def lines(carrier: CarrierServer) -> Iterator[Lines]:
    with Lines(carrier.state.auth_token).serving() as served:
        yield served


def call_in(carrier: CarrierServer, url: str) -> str:
    carrier.state.number_by_phone(SUPPORT).voice_url = url
    response = requests.post(f"{carrier.url}/_carrier/inbound", json={"from": CUSTOMER, "to": SUPPORT}, timeout=5)
    return response.json()["sid"]


def test_an_enqueued_caller_hears_the_wait_url_until_an_agent_dials_the_queue(carrier, twilio, lines):
    script(carrier, CUSTOMER, hangup_after=300)
    script(carrier, AGENT, hangup_after=40)
    caller = call_in(carrier, f"{lines.url}/enqueue")
    waited = wait_until(lambda: lines.forms("/wait"), message="the wait URL")[0]
    assert (waited["QueuePosition"], waited["CurrentQueueSize"]) == ("1", "1") and waited["QueueSid"].startswith("QU")
    agent = twilio.calls.create(to=AGENT, from_=SUPPORT, url=f"{lines.url}/agent").sid
    finished(carrier, agent)
    call = finished(carrier, caller)
    [left] = lines.forms("/left")
    assert (left["QueueResult"], left["QueueSid"], left["CallSid"]) == ("bridged", waited["QueueSid"], caller)
    [dialled] = lines.forms("/dialled")
    assert (dialled["DialCallStatus"], dialled["DialCallSid"]) == ("completed", caller)
    assert int(dialled["DialCallDuration"]) >= 10
    assert heard(call)[0] == "You are caller 1. Please hold." and heard(call)[-1] == "Queue result: bridged."
    assert any(e["kind"] == "bridged" for e in timeline(carrier, agent)["events"])


def test_leave_takes_the_caller_out_of_the_queue_to_the_enqueue_action(carrier, lines):
    call = finished(carrier, call_in(carrier, f"{lines.url}/enqueue?leave=1"))
    assert heard(call) == ["Everyone is busy.", "Queue result: leave."]
    assert lines.forms("/left")[0]["QueueResult"] == "leave"


def test_an_agent_dialling_an_empty_queue_waits_out_its_timeout(carrier, twilio, lines):
    finished(carrier, twilio.calls.create(to=AGENT, from_=SUPPORT, url=f"{lines.url}/agent").sid)
    assert lines.forms("/dialled")[0]["DialCallStatus"] == "no-answer"


def test_a_conference_holds_the_first_caller_until_a_second_joins(carrier, twilio, lines):
    script(carrier, CUSTOMER, hangup_after=300)
    script(carrier, AGENT, hangup_after=12)
    caller = call_in(carrier, f"{lines.url}/conference")
    wait_until(lambda: lines.forms("/conference-wait"), message="the conference's wait URL")
    agent = twilio.calls.create(to=AGENT, from_=SUPPORT, url=f"{lines.url}/conference?end=1").sid
    finished(carrier, agent)
    call = finished(carrier, caller)  # the agent ended the conference on leaving: the caller's Dial is over
    assert heard(call)[:2] == ["The others will join you soon.", "https://music.example.com/hold.mp3"]
    assert heard(call)[-1] == "Dial ended: completed."
    assert {n["error_code"] for n in call["notifications"]} == {"13238"}  # the Gather was not run
    assert not any(e["kind"] == "pressed" for e in call["events"])
    kinds = [e["kind"] for e in call["events"]]
    assert kinds.index("conference_joined") < kinds.index("conference_started") < kinds.index("conference_left")
    assert [e["kind"] for e in timeline(carrier, agent)["events"]].count("conference_started") == 1


def test_verbs_the_carrier_does_not_simulate_leave_notifications_and_the_call_goes_on(carrier, twilio, lines):
    sid = twilio.calls.create(to=CUSTOMER, from_=SUPPORT, url=f"{lines.url}/unsimulated").sid
    call = finished(carrier, sid)
    assert [n["error_code"] for n in call["notifications"]] == ["31920", "31920", "13801", "64004", "13246"]
    for notice in call["notifications"]:
        conforms(notice, "api.v2010.account.call.call_notification-instance")
        assert notice["call_sid"] == sid and notice["more_info"].endswith(notice["error_code"])
    assert lines.forms("/paid")[0]["Result"] == "payment-connector-error"
    assert lines.forms("/dialled")[0]["DialCallStatus"] == "failed"
    assert heard(call) == ["Still here.", "Payment: payment-connector-error.", "Dial ended: failed."]
    assert call["legs"] == []  # no SIP leg was placed
