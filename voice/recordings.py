"""Twilio's recordingStatusCallback: a recorded conversation kept on its call and thread, and told to the platform."""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, request

from context.events import Event, EventType, new_event
from core.validation import whole_number
from voice import twiml
from voice.calls import CALLS, CallRecord, CallRecording, CallStore, RecordingStored
from voice.security import require_twilio_signature, status_callback, webhook_failed

log = logging.getLogger(__name__)

bp = Blueprint("voice_recordings", __name__, url_prefix="/voice")
bp.before_request(require_twilio_signature)
bp.register_error_handler(Exception, webhook_failed)  # an empty document: 503 while Redis is away, else 500

SIDS = {"RecordingSid": re.compile(r"^RE[0-9a-fA-F]{32}$"), "CallSid": re.compile(r"^CA[0-9a-fA-F]{32}$")}


def _answer(status: int = 200) -> Response:
    """Twilio ignores a status callback's body; it gets empty TwiML all the same, with a status that says why."""
    return Response(twiml.empty(), status=status, mimetype="text/xml")


def _seconds(name: str) -> int | None:
    """A whole number of seconds from the form; None when absent; ValueError naming the field when not one."""
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    seconds = whole_number(raw)
    if seconds is None:
        raise ValueError(f"{name} must be a whole number, not {raw[:20]!r}")
    return seconds


@bp.post("/recording")
@status_callback
def recording_status() -> Response:
    """A recording is ready (RecordingStatus=completed): stored once per RecordingSid; anything else is logged."""
    form = request.form
    for name, pattern in SIDS.items():
        if not pattern.match(form.get(name, "")):
            log.warning("recording callback refused: %s is missing or not a Twilio SID", name)
            return _answer(400)
    sid, recording_sid, status = form["CallSid"], form["RecordingSid"], form.get("RecordingStatus", "")
    if status != "completed":
        log.warning("recording %s of call %s is %s: nothing to keep (error code %s)", recording_sid, sid,
                    status or "without a status", form.get("ErrorCode") or "none")
        return _answer()
    try:
        recording = CallRecording(sid=recording_sid, url=form.get("RecordingUrl") or None,
                                  duration=_seconds("RecordingDuration"), channels=_seconds("RecordingChannels"))
    except ValueError as exc:
        log.warning("recording callback for call %s refused: %s", sid, exc)
        return _answer(400)
    calls: CallStore = CALLS.get()
    stored = calls.add_recording(sid, recording, announce=_news(calls.get(sid), recording))
    if stored == RecordingStored.unknown_call:
        log.warning("recording %s is for call %s, which Threadline has no record of", recording_sid, sid)
        return _answer(404)
    return _answer()


def _news(record: CallRecord | None, recording: CallRecording) -> list[Event]:
    """What the thread's platform hears of the recording (a call with no thread has nobody to tell)."""
    if record is None or not record.thread_id:
        return []
    data = {"call_sid": record.sid, "recording_sid": recording.sid, "duration": recording.duration,
            "channels": recording.channels, "recording_url": recording.url, "agent_id": record.agent_id}
    return [new_event(record.thread_id, EventType.call_recording_ready, data,
                      f"The recording of your call ({recording.length}) is kept with this conversation.")]
