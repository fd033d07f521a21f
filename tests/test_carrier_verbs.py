"""The carrier's Record, transcription and answering-machine detection, as Twilio documents them, through a webhook
app of the test's own (Flask and twilio's VoiceResponse) and the twilio library."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask, Response, request
from twilio.twiml.voice_response import VoiceResponse

from carrier.server import CarrierServer
from tests.support.carrier import CUSTOMER, SUPPORT, KeptApp, finished, heard, saying, script, twiml, wait_until

VOICEMAIL = "+14155550301"


class Voicemail(KeptApp):
    """A voicemail line: Record with what its query asks for, a goodbye after it; keeps every request it gets."""

    def build(self) -> Flask:
        app = self.flask("voicemail")

        @app.post("/message")
        def message() -> Response:
            response = VoiceResponse()
            response.say("Leave a message after the beep.")
            transcribed = request.args.get("transcribe")
            extra = {"transcribe": True, "transcribe_callback": "/transcribed"} if transcribed else {}
            response.record(action="/recorded", timeout=3, max_length=int(request.args.get("max", 60)),
                            recording_status_callback="/recording",
                            recording_status_callback_event="in-progress completed absent", **extra)
            response.say("We did not hear a message. Goodbye.")
            return twiml(response)

        @app.post("/recorded")
        def recorded() -> Response:
            return saying("Thank you.")

        @app.post("/transcribed")
        @app.post("/recording")
        def callback() -> Response:
            return Response(status=204)

        @app.route("/answered", methods=["GET", "POST"])
        def answered() -> Response:
            return saying(f"Answered by {request.values.get('AnsweredBy')}.")

        return app


@pytest.fixture
def app(carrier: CarrierServer) -> Iterator[Voicemail]:
    with Voicemail(carrier.state.auth_token).serving() as served:
        yield served


def test_a_record_that_hears_only_silence_goes_on_to_the_next_verb_without_its_action(carrier, twilio, app):
    script(carrier, CUSTOMER, record_seconds=0)
    sid = twilio.calls.create(to=CUSTOMER, from_=SUPPORT, url=f"{app.url}/message").sid
    call = finished(carrier, sid)
    assert app.forms("/recorded") == []  # Twilio: an empty recording does not request the action
    assert heard(call)[-1] == "We did not hear a message. Goodbye."
    assert twilio.calls(sid).recordings.list() == [] and not carrier.state.recordings
    started, absent = wait_until(lambda: app.forms("/recording")[1:] and app.forms("/recording"),
                                 message="the absent recording callback")
    assert (started["RecordingStatus"], absent["RecordingStatus"], absent["CallSid"]) == ("in-progress", "absent", sid)
    assert started["RecordingSid"] == absent["RecordingSid"]
    [notice] = call["notifications"]
    assert (notice["error_code"], notice["log"], notice["call_sid"]) == ("16102", "1", sid)


def test_a_record_with_transcribe_posts_the_phones_words_to_its_transcribe_callback(carrier, twilio, app):
    script(carrier, CUSTOMER, record_seconds=6, message="Please call me back about my order.")
    sid = twilio.calls.create(to=CUSTOMER, from_=SUPPORT, url=f"{app.url}/message?transcribe=1").sid
    finished(carrier, sid)
    [action] = app.forms("/recorded")
    reported = wait_until(lambda: app.forms("/recording")[1:] and app.forms("/recording"))
    assert [(r["RecordingStatus"], r["RecordingSid"]) for r in reported] == [
        ("in-progress", action["RecordingSid"]), ("completed", action["RecordingSid"])]
    [done] = wait_until(lambda: app.forms("/transcribed"), message="the transcription callback")
    assert (done["TranscriptionStatus"], done["TranscriptionText"]) == ("completed",
                                                                       "Please call me back about my order.")
    assert (done["RecordingSid"], done["RecordingUrl"]) == (action["RecordingSid"], action["RecordingUrl"])
    assert done["TranscriptionSid"].startswith("TR") and done["TranscriptionSid"] in done["TranscriptionUrl"]
    assert (done["CallSid"], done["AccountSid"], done["From"], done["To"]) == (sid, carrier.state.account_sid,
                                                                             SUPPORT, CUSTOMER)

    # Twilio transcribes recordings of at most two minutes; a longer one's transcription fails.
    script(carrier, CUSTOMER, record_seconds=150, message="A very long story.")
    long_call = twilio.calls.create(to=CUSTOMER, from_=SUPPORT, url=f"{app.url}/message?transcribe=1&max=200").sid
    finished(carrier, long_call)
    failed = wait_until(lambda: [f for f in app.forms("/transcribed") if f["CallSid"] == long_call])[0]
    assert (failed["TranscriptionStatus"], failed["TranscriptionText"]) == ("failed", "")


def test_without_transcribe_nothing_is_transcribed(carrier, twilio, app):
    script(carrier, CUSTOMER, record_seconds=4, message="Hello.")
    finished(carrier, twilio.calls.create(to=CUSTOMER, from_=SUPPORT, url=f"{app.url}/message").sid)
    assert app.forms("/recorded") and not app.forms("/transcribed")


@pytest.mark.parametrize(("answered_by", "mode", "reported"), [
    ("machine_end_silence", "DetectMessageEnd", "machine_end_silence"),
    ("machine_end_other", "DetectMessageEnd", "machine_end_other"),
    ("fax", "DetectMessageEnd", "fax"),
    ("unknown", "DetectMessageEnd", "unknown"),
    ("machine_end_silence", "Enable", "machine_start"),
    ("fax", "Enable", "fax"),
])
def test_machine_detection_reports_each_of_twilios_verdicts(carrier, twilio, app, answered_by, mode, reported):
    script(carrier, VOICEMAIL, answered_by=answered_by)
    sid = twilio.calls.create(to=VOICEMAIL, from_=SUPPORT, url=f"{app.url}/answered", machine_detection=mode).sid
    call = finished(carrier, sid)
    assert heard(call) == [f"Answered by {reported}."]
    assert twilio.calls(sid).fetch().answered_by == reported


def test_machine_detection_that_times_out_answers_unknown(carrier, twilio, app):
    script(carrier, VOICEMAIL, answer="machine")  # its greeting ends, with a beep, after six seconds
    sid = twilio.calls.create(to=VOICEMAIL, from_=SUPPORT, url=f"{app.url}/answered",
                              machine_detection="DetectMessageEnd", machine_detection_timeout=3).sid
    assert heard(finished(carrier, sid)) == ["Answered by unknown."]
    [answer] = app.forms("/answered")
    assert (answer["AnsweredBy"], answer["MachineDetectionDuration"]) == ("unknown", "3000")
    assert twilio.calls(sid).fetch().answered_by == "unknown"

    patient = twilio.calls.create(to=VOICEMAIL, from_=SUPPORT, url=f"{app.url}/answered",
                                  machine_detection="DetectMessageEnd", machine_detection_timeout=10).sid
    assert heard(finished(carrier, patient)) == ["Answered by machine_end_beep."]
