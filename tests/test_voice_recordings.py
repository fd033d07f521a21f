"""Recorded calls end to end: the consent notice first, the recording on the call, in the thread and the desk, and
call.recording_ready delivered to the platform; the recording callback taken once, and refused when malformed."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from twilio.request_validator import RequestValidator

from context.events import thread_events
from tests.support.api import API_KEY
from tests.support.carrier import AGENT, CUSTOMER, OUTLASTS_AGENT, TALK, heard, wait_until
from tests.support.desk import HTML, sign_in, with_password
from tests.support.events import SECRET, Receiver, work_until
from tests.support.voice import GREETING, Line

NOTICE = "This call may be recorded for quality and training."
API = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def line_config(receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Events go to the platform's receiver, from the app and from the worker that delivers them."""
    monkeypatch.setenv("THREADLINE_WEBHOOK_URL", receiver[1])
    monkeypatch.setenv("THREADLINE_WEBHOOK_SECRET", SECRET)
    return {"THREADLINE_WEBHOOK_URL": receiver[1], "THREADLINE_WEBHOOK_SECRET": SECRET}


def recorded_call(line: Line) -> tuple[str, dict[str, Any]]:
    """Jane calls a number that records, says yes, and talks with Sam until Sam hangs up."""
    line.number(record_calls=True)
    line.thread("t-1")
    line.script(CUSTOMER, keys=["1"], hangup_after=OUTLASTS_AGENT)
    line.script(AGENT, keys=["1"], hangup_after=TALK)
    sid = line.call_in(CUSTOMER)
    return sid, line.finished(sid)


def stored(line: Line, sid: str) -> Any:
    return wait_until(lambda: (r := line.history(sid)) and r.recording and r, message="the recording on the call")


def post_signed(line: Line, params: dict[str, str], path: str = "/voice/recording") -> requests.Response:
    """A request as Twilio sends it: form-encoded, signed with the auth token for the exact URL."""
    url = f"{line.url}{path}"
    signature = RequestValidator(line.carrier.state.auth_token).compute_signature(url, params)
    return requests.post(url, data=params, headers={"X-Twilio-Signature": signature}, timeout=5)


def carrier_callbacks(call: dict[str, Any]) -> list[dict[str, str]]:
    return [hook["params"] for hook in call["webhooks"] if hook["kind"] == "recording"]


def test_a_recorded_call_says_so_first_and_ends_with_its_recording_everywhere(line, receiver):
    sid, call = recorded_call(line)

    assert heard(call)[0] == NOTICE
    assert heard(call)[1] == GREETING
    record = stored(line, sid)
    recording = record.recording
    assert recording.sid.startswith("RE") and recording.url.startswith(line.carrier.url)
    assert recording.channels == 2 and 0 < recording.duration < TALK  # from the bridge (not the answer) to the hang-up
    assert [s.kind for s in record.steps].count("recorded") == 1

    listed = line.app.test_client().get("/api/v1/threads/t-1/calls", headers=API).get_json()
    assert listed["calls"][0]["recording"] == {"sid": recording.sid, "url": recording.url,
                                               "duration": recording.duration, "channels": 2}

    platform, _ = receiver
    queue = line.app.extensions["threadline.queue"]
    work_until(queue, lambda: any(h["body"]["type"] == "call.recording_ready" for h in platform.hits))
    [hit] = [h for h in platform.hits if h["body"]["type"] == "call.recording_ready"]
    assert hit["valid"] and hit["body"]["thread_id"] == "t-1"
    assert hit["body"]["data"] == {"call_sid": sid, "recording_sid": recording.sid, "duration": recording.duration,
                                   "channels": 2, "recording_url": recording.url, "agent_id": "sam"}
    assert hit["body"]["message"] == f"The recording of your call ({recording.length}) is kept with this conversation."


def test_the_notice_comes_first_on_every_other_branch_in_the_numbers_language(line):
    line.number(record_calls=True)
    line.script(CUSTOMER, keys=[None, None])  # unknown caller: asked for a code, then the general line
    line.script(AGENT, keys=["1"], hangup_after=5)
    assert heard(line.finished(line.call_in(CUSTOMER)))[:2] == [
        NOTICE, "If the Acme app shows you a six digit call code, enter it now."]

    line.number(record_calls=True, caller_id_trust="attested")  # an unverified caller ID: welcome, then a code
    assert heard(line.finished(line.call_in(CUSTOMER)))[:2] == [NOTICE, "Thanks for calling Acme."]

    line.number(record_calls=True, business_hours={})  # closed: a voicemail
    assert heard(line.finished(line.call_in(CUSTOMER)))[:2] == [
        NOTICE, "Thanks for calling Acme. We are closed right now."]

    line.number(record_calls=True, language="fr-FR", voice=None, business_hours={})
    assert heard(line.finished(line.call_in(CUSTOMER)))[0] == (
        "Cet appel peut être enregistré à des fins de qualité et de formation.")


def test_a_number_that_does_not_record_says_nothing_of_it_and_records_nothing(line):
    line.thread("t-1")
    line.script(CUSTOMER, keys=["1"])
    line.script(AGENT, keys=["1"], hangup_after=TALK)
    sid = line.call_in(CUSTOMER)
    call = line.finished(sid)
    assert NOTICE not in heard(call) and carrier_callbacks(call) == []
    assert not line.carrier.state.recordings and line.history(sid).recording is None


def test_a_repeated_callback_changes_nothing(line, redis_client):
    sid, _ = recorded_call(line)
    first = stored(line, sid)

    def completed() -> list[dict[str, str]]:
        call = requests.get(f"{line.carrier.url}/_carrier/calls/{sid}", timeout=5).json()
        return [p for p in carrier_callbacks(call) if p["RecordingStatus"] == "completed"]

    [delivered] = wait_until(completed, message="the carrier's record of its callback")
    events = [e.id for e in thread_events(redis_client, "t-1") if e.type == "call.recording_ready"]
    assert len(events) == 1

    again = post_signed(line, {**delivered, "RecordingDuration": "999"})  # a retry, even a garbled one
    assert again.status_code == 200 and again.text.endswith("<Response />")
    assert line.history(sid).recording == first.recording
    assert [s.kind for s in line.history(sid).steps].count("recorded") == 1
    assert [e.id for e in thread_events(redis_client, "t-1") if e.type == "call.recording_ready"] == events


def test_a_recording_that_is_not_completed_is_logged_and_ignored(line, caplog):
    line.number(business_hours={})
    sid = line.call_in(CUSTOMER)
    line.finished(sid)
    base = {"AccountSid": line.carrier.state.account_sid, "CallSid": sid, "RecordingSid": "RE" + "a" * 32,
            "RecordingUrl": f"{line.carrier.url}/x", "RecordingDuration": "0", "RecordingChannels": "2"}
    for status in ("absent", "failed", "in-progress", ""):
        response = post_signed(line, {**base, "RecordingStatus": status})
        assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/xml")
    assert line.history(sid).recording is None
    assert "is absent: nothing to keep" in caplog.text


def test_bad_callbacks_get_a_clear_status_and_never_a_500(line):
    line.number(business_hours={})
    sid = line.call_in(CUSTOMER)
    line.finished(sid)
    good = {"AccountSid": line.carrier.state.account_sid, "CallSid": sid, "RecordingSid": "RE" + "b" * 32,
            "RecordingUrl": f"{line.carrier.url}/x", "RecordingStatus": "completed", "RecordingDuration": "12"}
    cases = [({k: v for k, v in good.items() if k != "RecordingSid"}, 400),
             ({k: v for k, v in good.items() if k != "CallSid"}, 400),
             ({**good, "RecordingSid": "RE-not-a-sid"}, 400),
             ({**good, "RecordingDuration": "twelve"}, 400),
             ({**good, "RecordingChannels": "-1"}, 400),
             ({**good, "CallSid": "CA" + "0" * 32}, 404)]  # a call Threadline never saw
    for params, expected in cases:
        response = post_signed(line, params)
        assert response.status_code == expected, params
        assert response.headers["Content-Type"].startswith("text/xml") and "<Response" in response.text
    assert requests.post(f"{line.url}/voice/recording", data=good, timeout=5).status_code == 403  # unsigned
    assert line.history(sid).recording is None
    assert post_signed(line, good).status_code == 200
    assert line.history(sid).recording.duration == 12


def test_the_desk_links_the_recording_and_plays_it_only_to_agents_of_the_thread(line):
    sid, _ = recorded_call(line)
    recording = stored(line, sid).recording
    line.agent("kim", name="Kim Ode", phone="+14155550779", status="available")  # works no number of this thread
    for agent in ("sam", "kim"):
        with_password(line.app, agent)
    path = f"/desk/threads/t-1/calls/{sid}/recording"

    kim = line.app.test_client()
    sign_in(kim, agent_id="kim")
    assert kim.get(path).status_code == 404
    assert kim.get("/desk/threads/t-1", headers=HTML).status_code == 404

    sam = line.app.test_client()
    sign_in(sam)
    page = sam.get("/desk/threads/t-1", headers=HTML).get_data(as_text=True)
    assert f'href="{path}"' in page and f"Recording ({recording.length})" in page
    audio = sam.get(path)
    assert audio.status_code == 200 and audio.mimetype == "audio/mpeg"
    assert audio.data[:2] == b"\xff\xfb" and len(audio.data) % 144 == 0  # whole MPEG frames, from the carrier
    assert sam.get(f"/desk/threads/t-1/calls/CA{'0' * 32}/recording").status_code == 404
    assert line.app.test_client().get(path).status_code == 401  # signed out


def test_a_voicemail_plays_through_the_desk_and_other_links_stay_as_they_are(line):
    line.agent("sam", name="Sam Lee", phone=AGENT, status="away")  # nobody available: a voicemail
    line.agent("lee", name="Lee Park", phone="+14155550778", status="offline")
    line.thread("t-1", messages=[{"id": "m1", "author": "customer", "text": "See the screenshot",
                                  "sent_at": "2026-11-22T10:00:00Z",
                                  "attachments": [{"name": "screenshot.png", "url": "https://files.example/s.png"}]}])
    line.script(CUSTOMER, keys=["1"], record_seconds=3)
    line.finished(line.call_in(CUSTOMER))
    voicemail = next(m for m in line.app.extensions["threadline.threads"].get("t-1").messages if m.id != "m1")
    recording = voicemail.attachments[0].url.rsplit("/", 1)[-1].split(".")[0]
    path = f"/desk/threads/t-1/recordings/{recording}"
    with_password(line.app)
    sam = line.app.test_client()
    sign_in(sam)

    page = sam.get("/desk/threads/t-1", headers=HTML).get_data(as_text=True)
    assert f'href="{path}"' in page and voicemail.attachments[0].url not in page
    assert 'href="https://files.example/s.png"' in page  # not a recording of the account: linked as given
    audio = sam.get(path)
    assert audio.status_code == 200 and audio.mimetype == "audio/mpeg" and audio.data[:2] == b"\xff\xfb"
    assert sam.get(f"/desk/threads/t-1/recordings/RE{'0' * 32}").status_code == 404  # not in this thread
    assert line.app.test_client().get(path).status_code == 401  # signed out
