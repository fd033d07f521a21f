"""Recordings as Twilio makes them: a Dial's (from answer or ringing), a whole call's (REST Record=true), a Record
verb's; their recordingStatusCallback requests; and their media, as small valid WAV or MP3 files of silence."""

from __future__ import annotations

import io
import math
import time
import wave
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from carrier.state import API_VERSION, Call, Recording, new_sid, rfc2822, utcnow
from carrier.twiml import Document, Node

if TYPE_CHECKING:
    from carrier.engine import Engine

# <Dial record="…">: whether and from when it records, and on how many channels (Twilio also takes true/false).
DIAL_MODES = {"do-not-record": None, "false": None, "true": (False, 1), "record-from-answer": (False, 1),
              "record-from-ringing": (True, 1), "record-from-answer-dual": (False, 2),
              "record-from-ringing-dual": (True, 2)}
CHANNELS = {"mono": 1, "dual": 2}
RECORDING_EVENTS = ("in-progress", "completed", "absent")
TRANSCRIBE_SECONDS = 120  # Twilio transcribes recordings of at most two minutes
MEDIA_SECONDS = 10  # the served audio is silence, at most this long: small, and valid
MP3_FRAME = bytes([0xFF, 0xFB, 0x18, 0xC4]) + bytes(140)  # MPEG-1 Layer III, 32 kbit/s, 32 kHz, mono: 144 bytes
MP3_FRAME_SECONDS = 1152 / 32000


@dataclass(frozen=True)
class RecordingPlan:
    """What is to be recorded, and who hears of it."""

    source: str  # Twilio's RecordingSource: DialVerb, OutboundAPI, RecordVerb
    channels: int = 1
    from_ringing: bool = False
    callback: str | None = None
    method: str = "POST"
    events: tuple[str, ...] = ("completed",)

    @classmethod
    def for_dial(cls, verb: Node, document: Document) -> RecordingPlan | None:
        """The Dial's plan; None when it does not record. ValueError (Twilio's 13217) for an unknown record value."""
        value = (verb.attr("record") or "do-not-record").strip().lower()
        if value not in DIAL_MODES:
            raise ValueError(f"Dial: Invalid record value {value!r}")
        mode = DIAL_MODES[value]
        return None if mode is None else cls("DialVerb", mode[1], mode[0], **_callback(verb, document))

    @classmethod
    def for_record_verb(cls, verb: Node, document: Document) -> RecordingPlan:
        return cls("RecordVerb", **_callback(verb, document))


def _callback(verb: Node, document: Document) -> dict[str, object]:
    url = verb.attr("recordingStatusCallback")
    asked = (verb.attr("recordingStatusCallbackEvent") or "completed").replace(",", " ").split()
    return {"callback": urljoin(document.url or "", url) if url else None,
            "method": (verb.attr("recordingStatusCallbackMethod") or "POST").upper(),
            "events": tuple(e for e in asked if e in RECORDING_EVENTS)}


@dataclass
class Running:
    """A recording under way on a call (or waiting for its answer)."""

    plan: RecordingPlan
    sid: str = field(default_factory=lambda: new_sid("RE"))
    started: float | None = None  # monotonic; None until the recording starts
    start_time: datetime | None = None


class Recorder:
    """Starts and stops a call's recordings as the engine reaches answers, bridges and ends; reports each one."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.running: dict[str, list[Running]] = {}  # by call SID

    def arm(self, call: Call, plan: RecordingPlan) -> Running:
        """Record this call under plan: now when it records from ringing, else once answered (or bridged)."""
        entry = Running(plan)
        with self.engine.state.lock:
            self.running.setdefault(call.sid, []).append(entry)
        if plan.from_ringing:
            self._start(call, entry)
        return entry

    def answered(self, call: Call) -> None:
        """The call was answered (REST) or its Dial bridged: recordings waiting for that start."""
        with self.engine.state.lock:
            waiting = [entry for entry in self.running.get(call.sid, []) if entry.started is None]
        for entry in waiting:
            self._start(call, entry)

    def _start(self, call: Call, entry: Running) -> None:
        entry.started, entry.start_time = time.monotonic(), utcnow()
        self.engine.event(call, "recording_started", recording_sid=entry.sid, source=entry.plan.source)
        self._report(call, entry.plan, entry.sid, "in-progress", 0, entry.start_time)

    def stop(self, call: Call, only: Running | None = None) -> list[Recording]:
        """Stop the call's recordings (every one, or `only`): one that ran is kept and reported, one that never
        began is absent."""
        with self.engine.state.lock:
            entries = self.running.get(call.sid, [])
            stopping = [e for e in entries if only is None or e is only]
            kept = [e for e in entries if e not in stopping]
            if kept:
                self.running[call.sid] = kept
            else:
                self.running.pop(call.sid, None)
        made = []
        for entry in stopping:
            if entry.started is None:
                self._report(call, entry.plan, entry.sid, "absent", 0, utcnow())
                continue
            seconds = max(1, math.ceil((time.monotonic() - entry.started) / self.engine.scale))
            made.append(self.save(call, entry.plan, seconds, entry.sid, entry.start_time))
        return made

    def save(self, call: Call, plan: RecordingPlan, seconds: int, sid: str | None = None,
             start_time: datetime | None = None) -> Recording:
        """Keep a finished recording of seconds and report it completed."""
        sid = sid or new_sid("RE")
        url = f"{self.engine.base_url}/{API_VERSION}/Accounts/{call.account_sid}/Recordings/{sid}"
        recording = Recording(sid, call.account_sid, call.sid, seconds, plan.source, plan.channels, url,
                              start_time or utcnow())
        with self.engine.state.lock:
            self.engine.state.recordings[sid] = recording
        self.engine.event(call, "recorded", recording_sid=sid, duration=seconds, source=plan.source)
        self._report(call, plan, sid, "completed", seconds, recording.date_created)
        return recording

    def begin(self, call: Call, plan: RecordingPlan) -> tuple[str, datetime]:
        """A <Record> starts recording: its SID and start, reported `in-progress` when asked."""
        sid, began = new_sid("RE"), utcnow()
        self._report(call, plan, sid, "in-progress", 0, began)
        return sid, began

    def absent(self, call: Call, plan: RecordingPlan, sid: str) -> None:
        """A recording that heard only silence: nothing is kept, its callback hears `absent`."""
        self._report(call, plan, sid, "absent", 0, utcnow())

    def transcribe(self, call: Call, recording: Recording, text: str, callback: str | None,
                   params: dict[str, str]) -> None:
        """Transcribe a <Record> recording (what the phone said), keep it and post it to transcribeCallback."""
        sid = new_sid("TR")
        status = "completed" if recording.duration <= TRANSCRIBE_SECONDS else "failed"
        text = text if status == "completed" else ""
        uri = f"/{API_VERSION}/Accounts/{call.account_sid}/Transcriptions/{sid}"
        now = rfc2822(utcnow())
        with self.engine.state.lock:
            self.engine.state.transcriptions[sid] = {
                "account_sid": call.account_sid, "api_version": API_VERSION, "date_created": now,
                "date_updated": now, "duration": str(recording.duration), "price": None, "price_unit": "USD",
                "recording_sid": recording.sid, "sid": sid, "status": status, "transcription_text": text,
                "type": "fast", "uri": f"{uri}.json"}
        self.engine.event(call, "transcribed", transcription_sid=sid, status=status, text=text)
        if callback:  # Twilio posts transcriptions, whatever the Record's method
            self.engine.outbox.put((call, "transcription", callback, {
                **params, "TranscriptionSid": sid, "TranscriptionText": text, "TranscriptionStatus": status,
                "TranscriptionUrl": f"{self.engine.base_url}{uri}", "RecordingSid": recording.sid,
                "RecordingUrl": recording.media_url or ""}, "POST"))

    def _report(self, call: Call, plan: RecordingPlan, sid: str, status: str, seconds: int,
                start_time: datetime) -> None:
        """Post Twilio's recordingStatusCallback parameters, when the plan asked for this event."""
        if not plan.callback or status not in plan.events:
            return
        params = {"AccountSid": call.account_sid, "CallSid": call.sid, "RecordingSid": sid,
                  "RecordingUrl": f"{self.engine.base_url}/{API_VERSION}/Accounts/{call.account_sid}/Recordings/{sid}",
                  "RecordingStatus": status, "RecordingDuration": str(seconds),
                  "RecordingChannels": str(plan.channels), "RecordingSource": plan.source,
                  "RecordingTrack": "both", "RecordingStartTime": format_datetime(start_time)}
        if status == "absent":
            params["ErrorCode"] = "0"
        self.engine.outbox.put((call, "recording", plan.callback, params, plan.method))


# --- media --------------------------------------------------------------------------------------------------------

def wav(seconds: int, channels: int = 1) -> bytes:
    """Silence of seconds (at most MEDIA_SECONDS), 8 kHz 8-bit PCM, as a WAV file."""
    audio = io.BytesIO()
    with wave.open(audio, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(1)
        out.setframerate(8000)
        out.writeframes(b"\x80" * 8000 * channels * min(max(seconds, 1), MEDIA_SECONDS))
    return audio.getvalue()


def mp3(seconds: int) -> bytes:
    """Silence of seconds (at most MEDIA_SECONDS) as MPEG-1 Layer III frames whose granules hold no data."""
    return MP3_FRAME * math.ceil(min(max(seconds, 1), MEDIA_SECONDS) / MP3_FRAME_SECONDS)
