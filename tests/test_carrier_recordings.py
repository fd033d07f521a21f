"""The carrier's recordings: <Dial record>, REST Record=true, recordingStatusCallback with Twilio's parameters, and
the Recordings resource with its media, checked against Twilio's OpenAPI document."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from flask import Flask, Response, request
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, VoiceResponse

from carrier.server import CarrierServer
from tests.support.carrier import AGENT, CUSTOMER, SUPPORT, Served, check, finished, script, wait_until

STATUS_PARAMS = {"AccountSid", "CallSid", "RecordingSid", "RecordingUrl", "RecordingStatus", "RecordingDuration",
                 "RecordingChannels", "RecordingSource", "RecordingTrack", "RecordingStartTime"}


@dataclass
class Recorded:
    """An app whose Dial records as its query says, and that keeps what the carrier posts back."""

    auth_token: str
    url: str = ""
    callbacks: list[tuple[dict[str, str], bool]] = field(default_factory=list)
    actions: list[dict[str, str]] = field(default_factory=list)

    def build(self) -> Flask:
        app = Flask("recorded")
        validator = RequestValidator(self.auth_token)

        def twiml(response: VoiceResponse) -> Response:
            return Response(str(response), mimetype="text/xml")

        @app.post("/dial")
        def dial() -> Response:
            response = VoiceResponse()
            attributes = {"record": request.args.get("record"), "action": "/after", "timeout": 10}
            if request.args.get("callback"):
                attributes.update(recording_status_callback="/recording",
                                  recording_status_callback_event="in-progress completed absent")
            dial = Dial(**{k: v for k, v in attributes.items() if v})
            dial.number(AGENT)
            response.append(dial)
            return twiml(response)

        @app.post("/after")
        def after() -> Response:
            self.actions.append(request.form.to_dict())
            response = VoiceResponse()
            response.hangup()
            return twiml(response)

        @app.post("/recording")
        def recording() -> Response:
            signed = validator.validate(request.url, request.form, request.headers.get("X-Twilio-Signature", ""))
            self.callbacks.append((request.form.to_dict(), signed))
            return Response(status=204)

        @app.post("/hold")
        def hold() -> Response:
            response = VoiceResponse()
            response.pause(length=20)
            return twiml(response)

        return app

    def reported(self, status: str) -> list[dict[str, str]]:
        return [form for form, _ in self.callbacks if form["RecordingStatus"] == status]


@pytest.fixture
def app(carrier: CarrierServer) -> Iterator[Recorded]:
    recorded = Recorded(carrier.state.auth_token)
    served = Served(recorded.build())
    recorded.url = served.url
    yield recorded
    served.stop()
    assert all(signed for _, signed in recorded.callbacks)


def call_in(carrier: CarrierServer, app: Recorded, query: str) -> str:
    carrier.state.number_by_phone(SUPPORT).voice_url = f"{app.url}/dial?{query}"
    response = requests.post(f"{carrier.url}/_carrier/inbound", json={"from": CUSTOMER, "to": SUPPORT}, timeout=5)
    return response.json()["sid"]


def media(carrier: CarrierServer, url: str, **auth: Any) -> requests.Response:
    return requests.get(url, timeout=5, auth=auth.get("auth", (carrier.state.account_sid, carrier.state.auth_token)))


def test_a_dial_recording_from_answer_on_two_channels_reports_as_twilio_does(carrier, app, twilio):
    script(carrier, AGENT, hangup_after=20)
    sid = call_in(carrier, app, "record=record-from-answer-dual&callback=1")
    finished(carrier, sid)
    [done] = wait_until(lambda: app.reported("completed"), message="the completed recording callback")
    assert STATUS_PARAMS <= set(done)
    assert (done["CallSid"], done["AccountSid"]) == (sid, carrier.state.account_sid)  # the parent leg
    assert (done["RecordingChannels"], done["RecordingSource"]) == ("2", "DialVerb")
    conversation = int(app.actions[0]["DialCallDuration"])
    assert conversation >= 15 and abs(int(done["RecordingDuration"]) - conversation) <= 2  # not the ringing
    assert [form["RecordingSid"] for form in app.reported("in-progress")] == [done["RecordingSid"]]
    assert app.reported("absent") == []
    action = app.actions[0]
    assert (action["RecordingSid"], action["RecordingUrl"]) == (done["RecordingSid"], done["RecordingUrl"])

    session = requests.Session()
    session.auth = (carrier.state.account_sid, carrier.state.auth_token)
    resource = check(session.get(f"{done['RecordingUrl']}.json", timeout=5), "Recordings/{Sid}.json", "get")
    assert (resource["call_sid"], resource["channels"], resource["source"]) == (sid, 2, "DialVerb")
    assert resource["media_url"] == done["RecordingUrl"] and resource["duration"] == done["RecordingDuration"]
    assert twilio.recordings(done["RecordingSid"]).fetch().channels == 2

    for suffix in ("", ".wav"):
        audio = media(carrier, done["RecordingUrl"] + suffix)
        assert audio.headers["Content-Type"] == "audio/x-wav"
        with wave.open(io.BytesIO(audio.content)) as read:
            assert (read.getnchannels(), read.getframerate()) == (2, 8000) and read.getnframes() == 8000 * 10
    mp3 = media(carrier, done["RecordingUrl"] + ".mp3")
    assert mp3.headers["Content-Type"] == "audio/mpeg"
    frames = [mp3.content[i:i + 144] for i in range(0, len(mp3.content), 144)]
    assert len(frames) > 1 and all(frame[:4] == b"\xff\xfb\x18\xc4" and len(frame) == 144 for frame in frames)
    assert media(carrier, done["RecordingUrl"] + ".ogg").status_code == 404
    assert media(carrier, done["RecordingUrl"] + ".mp3", auth=("AC" + "0" * 32, "wrong")).status_code == 401


def test_from_ringing_counts_the_ringing_too(carrier, app):
    script(carrier, AGENT, ring_seconds=6, hangup_after=10)
    finished(carrier, call_in(carrier, app, "record=record-from-ringing&callback=1"))
    [done] = wait_until(lambda: app.reported("completed"))
    conversation = int(app.actions[0]["DialCallDuration"])
    assert done["RecordingChannels"] == "1" and int(done["RecordingDuration"]) >= conversation + 5  # and the ringing


def test_nobody_answering_leaves_the_recording_absent(carrier, app):
    script(carrier, AGENT, answer="no-answer")
    sid = call_in(carrier, app, "record=record-from-answer-dual&callback=1")
    finished(carrier, sid)
    [absent] = wait_until(lambda: app.reported("absent"))
    assert (absent["CallSid"], absent["RecordingDuration"]) == (sid, "0")
    assert app.reported("completed") == [] and not carrier.state.recordings
    assert "RecordingSid" not in app.actions[0]


def test_a_dial_records_nothing_by_default_and_warns_of_an_unknown_record_value(carrier, app):
    script(carrier, AGENT, hangup_after=5)
    finished(carrier, call_in(carrier, app, "callback=1"))
    sid = call_in(carrier, app, "record=sometimes&callback=1")
    call = finished(carrier, sid)
    assert any(e["kind"] == "error" and e["code"] == 13217 for e in call["events"])
    assert call["legs"][0]["to"] == AGENT  # dialled all the same, unrecorded
    assert app.callbacks == [] and not carrier.state.recordings


def test_rest_record_true_records_the_whole_call_from_its_answer(carrier, app, twilio):
    sid = twilio.calls.create(to=CUSTOMER, from_=SUPPORT, url=f"{app.url}/hold", record=True,
                              recording_channels="dual", recording_status_callback=f"{app.url}/recording",
                              recording_status_callback_event=["completed"]).sid
    finished(carrier, sid)
    [done] = wait_until(lambda: app.reported("completed"))
    assert (done["CallSid"], done["RecordingSource"], done["RecordingChannels"]) == (sid, "OutboundAPI", "2")
    call_seconds = int(twilio.calls(sid).fetch().duration)
    assert call_seconds >= 20 and abs(int(done["RecordingDuration"]) - call_seconds) <= 2
    assert app.reported("in-progress") == []  # only the events asked for
    assert [r.sid for r in twilio.calls(sid).recordings.list()] == [done["RecordingSid"]]

    unrecorded = twilio.calls.create(to=CUSTOMER, from_=SUPPORT, url=f"{app.url}/hold", record=False).sid
    finished(carrier, unrecorded)
    assert twilio.calls(unrecorded).recordings.list() == []
    for bad in ({"record": "maybe"}, {"record": True, "recording_channels": "stereo"},
                {"record": True, "recording_status_callback": "not a url"},
                {"record": True, "recording_status_callback_event": ["finished"]}):
        with pytest.raises(TwilioRestException) as refused:
            twilio.calls.create(to=CUSTOMER, from_=SUPPORT, url=f"{app.url}/hold", **bad)
        assert refused.value.status == 400, bad
