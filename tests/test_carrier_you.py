"""The dev phone's own phone: live keys and words that cut prompts short, refused input, and what the carrier keeps."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from carrier.server import CarrierServer
from tests.support.carrier import (
    AGENT,
    CUSTOMER,
    LONG_PROMPT,
    SUPPORT,
    Served,
    VoiceApp,
    finished,
    timeline,
    wait_until,
)
from tests.support.processes import ROOT, free_port
from voice.twilio_client import make_client


@pytest.fixture
def carrier() -> Iterator[CarrierServer]:
    with CarrierServer(numbers=(SUPPORT,)) as server:  # real time: prompts last as long as they would
        yield server


@pytest.fixture
def voice_app(carrier: CarrierServer) -> Iterator[VoiceApp]:
    app = VoiceApp(carrier.state.auth_token)
    served = Served(app.build())
    app.url = served.url
    requests.put(f"{carrier.url}/_carrier/numbers/{SUPPORT}", json={"voice_url": f"{served.url}/long-menu",
                                                                    "friendly_name": "Acme Support"}, timeout=5)
    yield app
    served.stop()


def control(carrier: CarrierServer, method: str, path: str, **body: Any) -> requests.Response:
    return requests.request(method, f"{carrier.url}/_carrier/{path}", json=body, timeout=5)


def dial_from_you(carrier: CarrierServer) -> str:
    """Set the page's phone and dial the support number from it, as the page's buttons do; wait for the prompt."""
    assert control(carrier, "PUT", "you", phone=CUSTOMER).json() == {"phone": CUSTOMER}
    sid = control(carrier, "POST", "inbound", **{"from": CUSTOMER, "to": SUPPORT}).json()["sid"]
    wait_until(lambda: LONG_PROMPT in [e.get("text") for e in timeline(carrier, sid)["events"]], message="prompt")
    return sid


def test_a_key_from_your_phone_cuts_the_prompt_short_and_reaches_the_app(carrier, voice_app):
    sid = dial_from_you(carrier)
    call = timeline(carrier, sid)
    assert (call["live"], call["listening"], call["from_label"], call["to_label"]) == (
        True, ["dtmf", "speech"], "You", "Acme Support")
    assert control(carrier, "POST", f"calls/{sid}/keys", digits="1").json() == {"sid": sid, "pressed": "1"}
    form = wait_until(lambda: voice_app.hits_to("/capture"), message="the action")[0].form
    assert (form["Digits"], form["From"]) == ("1", CUSTOMER)
    call = finished(carrier, sid)
    kinds = [e["kind"] for e in call["events"]]
    assert kinds.index("heard") < kinds.index("barged_in") < kinds.index("pressed")
    [cut] = [e for e in call["events"] if e["kind"] == "barged_in"]
    full = len(LONG_PROMPT.split()) * 0.35
    assert cut["verb"] == "Say" and cut["after"] < full  # the prompt did not play to its end
    assert [e["digits"] for e in call["events"] if e["kind"] == "pressed"] == ["1"]
    assert all(isinstance(e["clock"], float) for e in call["events"])


def test_words_said_on_your_phone_are_the_speech_result(carrier, voice_app):
    sid = dial_from_you(carrier)
    assert control(carrier, "POST", f"calls/{sid}/speech", text="yes please").status_code == 200
    form = wait_until(lambda: voice_app.hits_to("/capture"), message="the action")[0].form
    assert form["SpeechResult"] == "yes please" and "Digits" not in form
    assert [e["speech"] for e in finished(carrier, sid)["events"] if e["kind"] == "said"] == ["yes please"]


def test_keys_nobody_listens_for_are_refused_and_never_shown_as_pressed(carrier):
    control(carrier, "PUT", "you", phone=CUSTOMER)
    client = make_client(carrier.state.account_sid, carrier.state.auth_token, carrier.url)
    twiml = "<Response><Say>Please hold.</Say><Pause length=\"600\"/></Response>"
    sid = client.calls.create(to=CUSTOMER, from_=SUPPORT, twiml=twiml).sid
    wait_until(lambda: timeline(carrier, sid)["status"] == "ringing", message="your phone to ring")
    assert control(carrier, "POST", f"calls/{sid}/answer").status_code == 200
    wait_until(lambda: "Please hold." in [e.get("text") for e in timeline(carrier, sid)["events"]])
    refused = control(carrier, "POST", f"calls/{sid}/keys", digits="1")
    assert refused.status_code == 409 and "nothing is listening for keys" in refused.json()["error"]["message"]
    assert control(carrier, "POST", f"calls/{sid}/speech", text="hello").status_code == 409
    control(carrier, "POST", f"calls/{sid}/hangup")
    call = finished(carrier, sid)
    assert not [e for e in call["events"] if e["kind"] in ("pressed", "said")]


def test_a_scripted_phone_takes_no_keys_from_the_page(carrier):
    client = make_client(carrier.state.account_sid, carrier.state.auth_token, carrier.url)
    sid = client.calls.create(to=AGENT, from_=SUPPORT, twiml="<Response><Pause length=\"600\"/></Response>").sid
    wait_until(lambda: timeline(carrier, sid)["status"] == "in-progress", message="the answer")
    refused = control(carrier, "POST", f"calls/{sid}/keys", digits="1")
    assert refused.status_code == 409 and "scripted" in refused.json()["error"]["message"]
    control(carrier, "POST", f"calls/{sid}/hangup")


def test_your_phone_and_scripts_outlive_a_restart_in_the_phones_file(tmp_path: Path):
    phones_file = tmp_path / "carrier-phones.json"
    with CarrierServer(phones_file=phones_file) as first:
        assert control(first, "PUT", "you", phone=CUSTOMER).status_code == 200
        saved = control(first, "PUT", f"phones/{AGENT}", answer="human", keys=["1"], label="Sam's phone")
        assert saved.json()["label"] == "Sam's phone"
        bad = control(first, "PUT", f"phones/{AGENT}", label="")
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "label"
    with CarrierServer(phones_file=phones_file) as second:
        listed = control(second, "GET", "phones").json()
        assert listed["you"] == CUSTOMER
        assert [(p["address"], p["label"], p["keys"]) for p in listed["phones"]] == [(AGENT, "Sam's phone", ["1"])]
        assert second.state.script_for(CUSTOMER).answer == "manual"
        assert second.state.label_of(AGENT) == "Sam's phone"
    phones_file.write_text("not json")
    with CarrierServer(phones_file=phones_file) as third:  # a damaged file is set aside, not fatal
        assert control(third, "GET", "phones").json() == {"you": None, "phones": []}


def test_only_the_newest_calls_are_kept():
    with CarrierServer(scale=0.005, numbers=(SUPPORT,)) as server:
        server.state.keep_calls = 3
        client = make_client(server.state.account_sid, server.state.auth_token, server.url)
        sids = []
        for _ in range(5):
            sids.append(client.calls.create(to=AGENT, from_=SUPPORT, twiml="<Response><Hangup/></Response>").sid)
            finished(server, sids[-1])
        listed = [c["sid"] for c in control(server, "GET", "calls").json()["calls"]]
        assert listed == list(reversed(sids[2:]))
        assert control(server, "GET", f"calls/{sids[0]}").status_code == 404


def test_the_carrier_logs_errors_but_not_the_pages_polling(tmp_path: Path):
    port = free_port()
    environ = {**os.environ, "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "secret"}
    process = subprocess.Popen([sys.executable, "-m", "carrier", "--port", str(port), "--number", SUPPORT,
                                "--desk-url", "http://127.0.0.1:9999/desk/"], cwd=ROOT, env=environ,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}/_carrier"

        def polled() -> bool:
            try:
                return requests.get(f"{url}/calls", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False
        wait_until(polled, message="the carrier to start")
        for _ in range(3):
            requests.get(f"{url}/calls", timeout=5)
        page = requests.get(f"{url}/", timeout=5).text
        assert 'href="http://127.0.0.1:9999/desk/"' in page and "Acme" not in page
        assert requests.post(f"{url}/inbound", json={}, timeout=5).status_code == 422
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert "POST /_carrier/inbound" in output and "422" in output
    assert "GET /_carrier/calls" not in output and "GET /_carrier/ " not in output
