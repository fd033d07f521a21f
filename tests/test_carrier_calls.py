"""Calls through the carrier: the twilio library places them, the carrier runs the app's TwiML over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from carrier.server import CarrierServer
from tests.support.carrier import (
    AGENT,
    CUSTOMER,
    SUPPORT,
    Served,
    VoiceApp,
    finished,
    heard,
    script,
    timeline,
    wait_until,
)
from voice.twilio_client import make_client


@pytest.fixture
def voice_app(carrier: CarrierServer) -> Iterator[VoiceApp]:
    app = VoiceApp(carrier.state.auth_token)
    served = Served(app.build())
    app.url = served.url
    yield app
    served.stop()
    assert app.hits, "the app was never called"
    assert all(hit.signed for hit in app.hits), [h.path for h in app.hits if not h.signed]


def place(twilio: Any, voice_app: VoiceApp, path: str, to: str = CUSTOMER, **kwargs: Any) -> str:
    return twilio.calls.create(to=to, from_=SUPPORT, url=f"{voice_app.url}{path}", **kwargs).sid


def test_ivr_menu_dials_the_agent_with_a_whisper_and_bridges(carrier, twilio, voice_app):
    script(carrier, CUSTOMER, keys=["1"], hangup_after=200)
    script(carrier, AGENT, keys=["1"], ring_seconds=3, hangup_after=60)
    call = finished(carrier, place(twilio, voice_app, "/ivr"))

    assert heard(call)[:2] == ["Welcome to Acme. Press 1 to talk to support.", "Connecting you to an agent."]
    assert heard(call)[-1] == "Dial ended: completed."
    assert [e["digits"] for e in call["events"] if e["kind"] == "pressed"] == ["1"]
    agent = call["legs"][0]
    assert (agent["to"], agent["from"], agent["direction"]) == (AGENT, SUPPORT, "outbound-dial")
    assert agent["parent_call_sid"] == call["sid"]
    assert heard(agent) == ["Call from Jane about the app crashing at login. Press 1 to accept."]
    assert [e["kind"] for e in agent["events"]].count("bridged") == 1
    assert agent["status"] == "completed" and 55 <= int(agent["duration"]) <= 75

    after = voice_app.hits_to("/ivr/after-dial")[0].form
    assert after["DialCallStatus"] == "completed" and after["DialCallSid"] == agent["sid"]
    # The bridge starts after the whisper, so it is shorter than the agent's leg.
    assert after["DialBridged"] == "true" and 40 <= int(after["DialCallDuration"]) <= int(agent["duration"])
    whisper = voice_app.hits_to("/ivr/whisper")[0].form
    assert whisper["ParentCallSid"] == call["sid"] and whisper["Direction"] == "outbound-dial"

    statuses = [h.form for h in wait_until(lambda: len(voice_app.hits_to("/status")) == 4 and
                                           voice_app.hits_to("/status"))]
    assert [s["CallStatus"] for s in statuses] == ["initiated", "ringing", "in-progress", "completed"]
    assert [int(s["SequenceNumber"]) for s in statuses] == [0, 1, 2, 3]
    assert statuses[-1]["CallDuration"] == agent["duration"] and all(s["CallSid"] == agent["sid"] for s in statuses)


def test_an_agent_who_does_not_accept_the_whisper_is_no_answer(carrier, twilio, voice_app):
    script(carrier, CUSTOMER, keys=["1"])
    script(carrier, AGENT, keys=["9"])
    call = finished(carrier, place(twilio, voice_app, "/ivr"))
    after = voice_app.hits_to("/ivr/after-dial")[0].form
    assert (after["DialCallStatus"], after["DialBridged"]) == ("no-answer", "false")
    assert heard(call)[-1] == "Dial ended: no-answer."
    assert call["legs"][0]["status"] == "completed"


@pytest.mark.parametrize(("answer", "dial_status"), [("busy", "busy"), ("no-answer", "no-answer"),
                                                     ("failed", "failed")])
def test_an_unreachable_agent_gives_its_dial_status(carrier, twilio, voice_app, answer, dial_status):
    script(carrier, CUSTOMER, keys=["1"])
    script(carrier, AGENT, answer=answer)
    call = finished(carrier, place(twilio, voice_app, "/ivr"))
    assert voice_app.hits_to("/ivr/after-dial")[0].form["DialCallStatus"] == dial_status
    assert call["legs"][0]["status"] == answer


def test_gather_falls_through_when_nothing_is_pressed(carrier, twilio, voice_app):
    call = finished(carrier, place(twilio, voice_app, "/ivr"))  # unscripted: a human who presses nothing
    assert heard(call) == ["Welcome to Acme. Press 1 to talk to support.", "We did not get your choice. Goodbye."]
    assert voice_app.hits_to("/ivr/choice") == []


def test_gather_takes_keys_in_turn_and_redirect_reenters_the_menu(carrier, twilio, voice_app):
    script(carrier, CUSTOMER, keys=["7", "1"], speech=[], hangup_after=30)
    script(carrier, AGENT, answer="busy")
    finished(carrier, place(twilio, voice_app, "/ivr"))
    assert [h.form["Digits"] for h in voice_app.hits_to("/ivr/choice")] == ["7", "1"]
    assert len(voice_app.hits_to("/ivr")) == 2


def test_busy_failed_and_unanswered_phones_end_the_call_with_that_status(carrier, twilio, voice_app):
    for phone, answer in (("+14155550201", "busy"), ("+14155550202", "failed"), ("+14155550203", "no-answer")):
        script(carrier, phone, answer=answer)
        sid = place(twilio, voice_app, "/ivr", to=phone, status_callback=f"{voice_app.url}/status")
        assert finished(carrier, sid)["status"] == answer
        assert twilio.calls(sid).fetch().status == answer
    completed = [h.form for h in wait_until(lambda: len(voice_app.hits_to("/status")) == 3 and
                                            voice_app.hits_to("/status"))]
    assert sorted(f["CallStatus"] for f in completed) == ["busy", "failed", "no-answer"]
    assert voice_app.hits_to("/ivr") == []


def test_machine_detection_reports_who_answered(carrier, twilio, voice_app):
    script(carrier, "+14155550301", answer="machine")
    sync = finished(carrier, place(twilio, voice_app, "/echo", to="+14155550301", machine_detection="Enable"))
    assert heard(sync) == ["You are machine_start."] and sync["answered_by"] == "machine_start"
    human = finished(carrier, place(twilio, voice_app, "/echo", machine_detection="DetectMessageEnd"))
    assert heard(human) == ["You are human."]

    asynchronous = place(twilio, voice_app, "/hold", to="+14155550301", machine_detection="DetectMessageEnd",
                         async_amd=True, async_amd_status_callback=f"{voice_app.url}/status")
    report = wait_until(lambda: [h for h in voice_app.hits_to("/status") if "AnsweredBy" in h.form],
                        message="the async AMD callback")[0].form
    assert report["AnsweredBy"] == "machine_end_beep" and report["CallSid"] == asynchronous
    assert int(report["MachineDetectionDuration"]) > 0
    twilio.calls(asynchronous).update(status="completed")
    assert finished(carrier, asynchronous)["status"] == "completed"


def test_record_makes_a_recording_and_calls_back(carrier, twilio, voice_app):
    script(carrier, CUSTOMER, record_seconds=8)
    sid = place(twilio, voice_app, "/record")
    call = finished(carrier, sid)
    action = voice_app.hits_to("/recorded")[0].form
    assert action["RecordingDuration"] == "8" and action["RecordingUrl"].startswith(carrier.url)
    recording = twilio.recordings(action["RecordingSid"]).fetch()
    assert (recording.call_sid, recording.duration, recording.status) == (sid, "8", "completed")
    assert [r.sid for r in twilio.calls(sid).recordings.list()] == [action["RecordingSid"]]
    media = requests.get(action["RecordingUrl"] + ".wav", timeout=5,
                         auth=(carrier.state.account_sid, carrier.state.auth_token))
    assert media.headers["Content-Type"] == "audio/x-wav" and media.content.startswith(b"RIFF")
    status = wait_until(lambda: [h.form for h in voice_app.hits_to("/status") if "RecordingStatus" in h.form])[0]
    assert (status["RecordingStatus"], status["RecordingSid"]) == ("completed", action["RecordingSid"])
    assert heard(call) == ["Leave a message after the beep.", "(beep)", "Thank you."]


def test_inbound_call_uses_the_numbers_voice_url_and_reject_does_not_answer(carrier, twilio, voice_app):
    number = twilio.incoming_phone_numbers.list(phone_number=SUPPORT)[0]
    number.update(voice_url=f"{voice_app.url}/reject", status_callback=f"{voice_app.url}/status")
    sid = requests.post(f"{carrier.url}/_carrier/inbound", json={"from": CUSTOMER, "to": SUPPORT},
                        timeout=5).json()["sid"]
    call = finished(carrier, sid)
    assert (call["status"], call["direction"], call["start_time"] is not None) == ("busy", "inbound", True)
    assert call["duration"] == "0"
    first = voice_app.hits_to("/reject")[0].form
    assert (first["CallStatus"], first["From"], first["To"], first["Direction"]) == (
        "ringing", CUSTOMER, SUPPORT, "inbound")
    assert [h.form["CallStatus"] for h in wait_until(lambda: voice_app.hits_to("/status"))] == ["busy"]


def test_a_phone_scripted_with_a_verification_sends_it_as_stir_verstat(carrier, twilio, voice_app):
    twilio.incoming_phone_numbers.list(phone_number=SUPPORT)[0].update(voice_url=f"{voice_app.url}/reject")
    script(carrier, CUSTOMER, stir_verstat="TN-Validation-Failed-A")
    for caller in (CUSTOMER, AGENT):
        sid = requests.post(f"{carrier.url}/_carrier/inbound", json={"from": caller, "to": SUPPORT},
                            timeout=5).json()["sid"]
        finished(carrier, sid)
    customer, agent = (h.form for h in voice_app.hits_to("/reject"))
    assert customer["StirVerstat"] == "TN-Validation-Failed-A" and "StirVerstat" not in agent


@pytest.mark.parametrize("route", [{"voice_application_sid": "AP" + "a1" * 16}, {"trunk_sid": "TK" + "b2" * 16}])
def test_an_inbound_call_to_a_number_on_an_application_or_trunk_never_reaches_its_voice_url(carrier, voice_app,
                                                                                              route):
    attached = requests.put(f"{carrier.url}/_carrier/numbers/{SUPPORT}", timeout=5, json={
        "voice_url": f"{voice_app.url}/ivr", "status_callback": f"{voice_app.url}/status", **route})
    assert attached.status_code == 200, attached.text
    sid = requests.post(f"{carrier.url}/_carrier/inbound", json={"from": CUSTOMER, "to": SUPPORT},
                        timeout=5).json()["sid"]
    call = finished(carrier, sid)
    assert call["status"] == "failed" and voice_app.hits_to("/ivr") == []
    [error] = [e for e in call["events"] if e["kind"] == "error"]
    kind = "TwiML App" if "voice_application_sid" in route else "SIP trunk"
    assert f"the {kind} {next(iter(route.values()))}" in error["message"] and "VoiceUrl" in error["message"]
    assert [h.form["CallStatus"] for h in wait_until(lambda: voice_app.hits_to("/status"))] == ["failed"]


@pytest.mark.parametrize(("path", "code"), [("/broken", 11200), ("/json", 12300), ("/garbled", 12100)])
def test_a_failing_webhook_uses_the_fallback_then_the_application_error(carrier, twilio, voice_app, path, code):
    with_fallback = finished(carrier, place(twilio, voice_app, path, fallback_url=f"{voice_app.url}/fallback"))
    assert heard(with_fallback) == ["Sorry, we are having trouble. Please call back later."]
    fallback = voice_app.hits_to("/fallback")[0].form
    assert (fallback["ErrorCode"], fallback["ErrorUrl"]) == (str(code), f"{voice_app.url}{path}")
    alone = finished(carrier, place(twilio, voice_app, path))
    assert heard(alone) == ["We're sorry, an application error has occurred. Goodbye."]
    assert alone["status"] == "completed" and alone["errors"][0]["code"] == code


def test_an_unreachable_app_is_a_connection_failure(carrier, twilio):
    sid = twilio.calls.create(to=CUSTOMER, from_=SUPPORT, url="http://127.0.0.1:9/voice").sid
    call = finished(carrier, sid)
    assert call["errors"][0]["code"] == 11205
    assert heard(call) == ["We're sorry, an application error has occurred. Goodbye."]


def test_live_calls_can_be_redirected_given_twiml_or_hung_up(carrier, twilio, voice_app):
    sid = place(twilio, voice_app, "/hold")
    wait_until(lambda: "Please hold." in heard(timeline(carrier, sid)))
    twilio.calls(sid).update(url=f"{voice_app.url}/echo")
    wait_until(lambda: "You are unknown." in heard(timeline(carrier, sid)))
    assert finished(carrier, sid)["status"] == "completed"

    sid = place(twilio, voice_app, "/hold")
    wait_until(lambda: "Please hold." in heard(timeline(carrier, sid)))
    twilio.calls(sid).update(twiml="<Response><Say>Inline words.</Say></Response>")
    assert heard(finished(carrier, sid))[-1] == "Inline words."

    sid = place(twilio, voice_app, "/hold")
    wait_until(lambda: "Please hold." in heard(timeline(carrier, sid)))
    assert twilio.calls(sid).update(status="completed").status == "completed"
    with pytest.raises(TwilioRestException) as ended:
        twilio.calls(sid).update(url=f"{voice_app.url}/echo")
    assert (ended.value.status, ended.value.code) == (400, 21220)


def test_a_ringing_call_can_be_canceled(carrier, twilio, voice_app):
    script(carrier, CUSTOMER, ring_seconds=50)
    sid = place(twilio, voice_app, "/ivr", status_callback=f"{voice_app.url}/status")
    wait_until(lambda: twilio.calls(sid).fetch().status == "ringing")
    assert twilio.calls(sid).update(status="canceled").status == "canceled"
    assert voice_app.hits_to("/ivr") == []
    completed = wait_until(lambda: voice_app.hits_to("/status"))[0].form
    assert (completed["CallStatus"], completed["CallDuration"]) == ("canceled", "0")


def test_a_person_answers_a_manual_phone_and_presses_keys(carrier, twilio, voice_app):
    script(carrier, CUSTOMER, answer="manual")
    script(carrier, AGENT, answer="busy")
    sid = place(twilio, voice_app, "/ivr")
    wait_until(lambda: timeline(carrier, sid)["status"] == "ringing")
    assert requests.post(f"{carrier.url}/_carrier/calls/{sid}/answer", timeout=5).status_code == 200
    wait_until(lambda: "Welcome to Acme. Press 1 to talk to support." in heard(timeline(carrier, sid)))
    pressed = requests.post(f"{carrier.url}/_carrier/calls/{sid}/keys", json={"digits": "1"}, timeout=5)
    assert pressed.status_code == 200
    call = finished(carrier, sid)
    assert voice_app.hits_to("/ivr/choice")[0].form["Digits"] == "1"
    assert heard(call)[-1] == "Dial ended: busy."


def test_a_manual_phone_nobody_answers_is_no_answer(carrier, twilio, voice_app):
    script(carrier, CUSTOMER, answer="manual")
    sid = place(twilio, voice_app, "/ivr", timeout=1, status_callback=f"{voice_app.url}/status")
    assert finished(carrier, sid)["status"] == "no-answer"
    assert wait_until(lambda: voice_app.hits_to("/status"))[0].form["CallStatus"] == "no-answer"


def inline(twilio: Any, twiml: str, to: str = CUSTOMER) -> str:
    return twilio.calls.create(to=to, from_=SUPPORT, twiml=twiml).sid


def test_gather_honours_finish_on_key_num_digits_and_speech(carrier, twilio, voice_app):
    capture = f"{voice_app.url}/capture"
    cases = [({"keys": ["12*9"]}, f'<Gather input="dtmf speech" finishOnKey="*" action="{capture}"/>'),
             ({"speech": ["my app crashes at login"]}, f'<Gather input="dtmf speech" action="{capture}"/>'),
             ({"keys": ["123456"]}, f'<Gather numDigits="4" action="{capture}"/>'),
             ({"keys": ["#"]}, f'<Gather action="{capture}" actionOnEmptyResult="true"/>')]
    for behaviour, gather in cases:
        script(carrier, CUSTOMER, **behaviour)
        finished(carrier, inline(twilio, f"<Response>{gather}</Response>"))
    first, second, third, fourth = (hit.form for hit in voice_app.hits_to("/capture"))
    assert (first["Digits"], first["FinishedOnKey"]) == ("12", "*")
    assert second["SpeechResult"] == "my app crashes at login" and float(second["Confidence"]) > 0
    assert "Digits" not in second
    assert third["Digits"] == "1234"
    assert fourth["Digits"] == ""  # '#' alone is no input; actionOnEmptyResult still calls the action


def test_dial_client_rings_the_browser_identity(carrier, twilio, voice_app):
    script(carrier, "client:sam", ring_seconds=1, hangup_after=10)
    sid = inline(twilio, f'<Response><Dial action="{voice_app.url}/capture"><Client>sam</Client></Dial></Response>')
    call = finished(carrier, sid)
    assert call["legs"][0]["to"] == "client:sam"
    after = voice_app.hits_to("/capture")[0].form
    assert (after["DialCallStatus"], after["DialBridged"]) == ("completed", "true")


def test_reordered_status_callbacks_carry_the_sequence_that_restores_their_order(carrier, twilio, voice_app):
    settings = requests.put(f"{carrier.url}/_carrier/settings", json={"status_callbacks": "reordered"}, timeout=5)
    assert settings.status_code == 200
    twilio.calls.create(to=CUSTOMER, from_=SUPPORT, twiml="<Response><Say>Hi</Say></Response>",
                        status_callback=f"{voice_app.url}/status",
                        status_callback_event=["initiated", "ringing", "answered", "completed"])
    hits = wait_until(lambda: len(voice_app.hits_to("/status")) == 8 and voice_app.hits_to("/status"))
    received = [(int(h.form["SequenceNumber"]), h.form["CallStatus"]) for h in hits]
    assert sorted(set(received)) == [(0, "initiated"), (1, "ringing"), (2, "in-progress"), (3, "completed")]
    assert received != sorted(received)  # delivered twice each, not in order


def test_twilio_edge_and_region_do_not_send_the_client_elsewhere(carrier, monkeypatch):
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    client = make_client(carrier.state.account_sid, carrier.state.auth_token, carrier.url)
    assert client.incoming_phone_numbers.list()[0].phone_number == SUPPORT


def test_a_caller_hanging_up_mid_bridge_still_reaches_the_dial_action(carrier, twilio, voice_app):
    script(carrier, CUSTOMER, keys=["1"])
    script(carrier, AGENT, keys=["1"], hangup_after=5000)
    sid = place(twilio, voice_app, "/ivr")
    wait_until(lambda: any(e["kind"] == "bridged" for e in timeline(carrier, sid)["events"]))
    assert requests.post(f"{carrier.url}/_carrier/calls/{sid}/hangup", timeout=5).status_code == 200
    call = finished(carrier, sid)
    after = wait_until(lambda: voice_app.hits_to("/ivr/after-dial"))[0].form
    assert (after["CallStatus"], after["DialCallStatus"], after["DialBridged"]) == ("completed", "completed", "true")
    assert "Dial ended: completed." not in heard(call)  # the caller is gone: nobody hears the action's TwiML
    assert call["legs"][0]["status"] == "completed"


def test_time_limit_ends_the_call(carrier, twilio, voice_app):
    call = finished(carrier, place(twilio, voice_app, "/hold", time_limit=30))
    assert call["status"] == "completed" and 29 <= int(call["duration"]) <= 32


def test_reordered_callbacks_are_released_when_the_call_ends_without_a_completed_event(carrier, twilio, voice_app):
    requests.put(f"{carrier.url}/_carrier/settings", json={"status_callbacks": "reordered"}, timeout=5)
    twilio.calls.create(to=CUSTOMER, from_=SUPPORT, twiml="<Response><Say>Hi</Say></Response>",
                        status_callback=f"{voice_app.url}/status", status_callback_event=["initiated", "answered"])
    hits = wait_until(lambda: len(voice_app.hits_to("/status")) == 4 and voice_app.hits_to("/status"))
    assert sorted({h.form["CallStatus"] for h in hits}) == ["in-progress", "initiated"]
