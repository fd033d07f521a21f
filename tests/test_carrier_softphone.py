"""The desk's browser phone against the carrier: a registered client identity rings at the page, which answers, presses
keys, mutes and hangs up; only the desk's origin may do so from a browser, and only for its own identity."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask, request
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from carrier.server import CarrierServer
from tests.support.carrier import CUSTOMER, SUPPORT, KeptApp, finished, twiml, wait_until

DESK = "http://127.0.0.1:5999"
IDENTITY = "sam.browser"


class ClientIvr(KeptApp):
    """Dials the browser phone sam.browser, whose agent hears a whisper and presses 1 to take the call."""

    def build(self) -> Flask:
        app = self.flask("client-ivr")

        @app.post("/in")
        def incoming() -> Any:
            response = VoiceResponse()
            dial = Dial(action="/after", timeout=20)
            dial.client(IDENTITY, url="/whisper")
            response.append(dial)
            return twiml(response)

        @app.post("/whisper")
        def whisper() -> Any:
            response = VoiceResponse()
            gather = Gather(num_digits=1, action="/accept", timeout=5)
            gather.say("Call from Jane. Press 1 to accept.")
            response.append(gather)
            response.hangup()
            return twiml(response)

        @app.post("/accept")
        def accept() -> Any:
            response = VoiceResponse()
            if request.form.get("Digits") != "1":
                response.hangup()
            return twiml(response)

        @app.post("/after")
        def after() -> Any:
            response = VoiceResponse()
            response.say(f"Dial ended: {request.form.get('DialCallStatus')}.")
            return twiml(response)

        return app


@pytest.fixture
def ivr(carrier: CarrierServer) -> Iterator[ClientIvr]:
    carrier.desk_url = f"{DESK}/desk/"
    app = ClientIvr(carrier.state.auth_token)
    with app.serving():
        carrier.state.number_by_phone(SUPPORT).voice_url = f"{app.url}/in"
        yield app


def desk(carrier: CarrierServer, method: str, path: str, **body: Any) -> requests.Response:
    """A request from the desk's page: its origin, and a JSON body."""
    return requests.request(method, f"{carrier.url}/_carrier/clients/{path}", json=body,
                            headers={"Origin": DESK}, timeout=5)


def ringing(carrier: CarrierServer, identity: str = IDENTITY) -> dict[str, Any]:
    return wait_until(lambda: next((leg for leg in desk(carrier, "GET", f"{identity}/calls").json()["calls"]
                                    if leg["status"] == "ringing"), None), message="a leg ringing the page")


def call_in(carrier: CarrierServer) -> str:
    response = requests.post(f"{carrier.url}/_carrier/inbound", json={"from": CUSTOMER, "to": SUPPORT}, timeout=5)
    return response.json()["sid"]


def test_a_registered_identity_rings_at_the_page_which_answers_presses_mutes_and_hangs_up(carrier, ivr):
    assert desk(carrier, "PUT", IDENTITY).json() == {"identity": IDENTITY, "seconds": 30}
    sid = call_in(carrier)
    leg = ringing(carrier)
    assert (leg["status"], leg["from"], leg["parent_call_sid"], leg["at_desk"]) == ("ringing", CUSTOMER, sid, True)
    path = f"{IDENTITY}/calls/{leg['sid']}"
    assert desk(carrier, "POST", f"{path}/answer").status_code == 200
    wait_until(lambda: desk(carrier, "GET", f"{IDENTITY}/calls").json()["calls"][0]["listening"] == ["dtmf"],
               message="the whisper to listen")
    assert desk(carrier, "POST", f"{path}/keys", digits="1").json() == {"sid": leg["sid"], "pressed": "1"}
    assert desk(carrier, "POST", f"{path}/mute", muted=True).json() == {"sid": leg["sid"], "muted": True}
    assert desk(carrier, "GET", f"{IDENTITY}/calls").json()["calls"][0]["muted"] is True
    wait_until(lambda: any(e["kind"] == "bridged" for e in requests.get(
        f"{carrier.url}/_carrier/calls/{leg['sid']}", timeout=5).json()["events"]), message="the bridge")
    assert desk(carrier, "POST", f"{path}/hangup").status_code == 200
    call = finished(carrier, sid)
    [agent] = call["legs"]
    by_page = [(e["kind"], e["by"]) for e in agent["events"] if e.get("by") == "the desk's browser phone"]
    assert by_page == [("picked_up", "the desk's browser phone"), ("muted", "the desk's browser phone"),
                       ("hung_up", "the desk's browser phone")]
    assert [e["digits"] for e in agent["events"] if e["kind"] == "pressed"] == ["1"]
    assert agent["status"] == "completed" and ivr.forms("/after")[0]["DialCallStatus"] == "completed"
    assert desk(carrier, "GET", f"{IDENTITY}/calls").json() == {"calls": []}


def test_only_the_desks_origin_may_use_it_and_only_for_its_own_identity(carrier, ivr):
    preflight = requests.options(f"{carrier.url}/_carrier/clients/{IDENTITY}/calls/CA1/answer", timeout=5,
                                 headers={"Origin": DESK, "Access-Control-Request-Method": "POST",
                                          "Access-Control-Request-Headers": "content-type"})
    assert preflight.headers["Access-Control-Allow-Origin"] == DESK
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    elsewhere = requests.get(f"{carrier.url}/_carrier/clients/{IDENTITY}/calls", timeout=5,
                             headers={"Origin": "http://127.0.0.1:6000"})
    assert "Access-Control-Allow-Origin" not in elsewhere.headers  # the browser keeps the answer from that page
    assert elsewhere.status_code == 403
    foreign = {"Origin": "https://elsewhere.example"}
    assert requests.put(f"{carrier.url}/_carrier/clients/{IDENTITY}", headers=foreign, timeout=5).status_code == 403
    with carrier.state.lock:
        assert IDENTITY not in carrier.state.desks  # another site's page took no calls for the agent
    desk(carrier, "PUT", IDENTITY)
    sid = call_in(carrier)
    leg = ringing(carrier)
    hang_up = requests.post(f"{carrier.url}/_carrier/clients/{IDENTITY}/calls/{leg['sid']}/hangup", headers=foreign,
                            timeout=5)
    assert hang_up.status_code == 403 and ringing(carrier)["sid"] == leg["sid"]  # still ringing the desk
    other = desk(carrier, "POST", f"kim.browser/calls/{leg['sid']}/answer")
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    assert desk(carrier, "PUT", "not an identity").status_code == 422
    assert desk(carrier, "POST", f"{IDENTITY}/calls/{leg['sid']}/mute", muted="yes").status_code == 422
    desk(carrier, "POST", f"{IDENTITY}/calls/{leg['sid']}/hangup")  # declined while ringing
    call = finished(carrier, sid)
    assert call["legs"][0]["status"] == "canceled"
    assert ivr.forms("/after")[0]["DialCallStatus"] == "no-answer"


def test_an_identity_no_page_registered_answers_as_its_script_says(carrier, ivr):
    sid = call_in(carrier)
    call = finished(carrier, sid)
    [agent] = call["legs"]
    assert agent["to"] == f"client:{IDENTITY}" and agent["status"] == "completed"
    assert not [e for e in agent["events"] if e["kind"] == "picked_up"]
