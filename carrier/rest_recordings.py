"""The Recordings resource of Twilio's 2010-04-01 REST API, the account's and each call's, with their audio."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from carrier.recordings import mp3, wav
from carrier.rest import bp, by_date, date_filters, lookup, not_found, page, remove, state
from carrier.state import Recording


def _recordings(call_sid: str | None = None) -> list[Recording]:
    """The account's recordings, newest first, for one call or all, filtered by CallSid and DateCreated."""
    wanted = call_sid or request.args.get("CallSid")
    date_filters("DateCreated")
    with state().lock:
        found = list(state().recordings.values())
    return [r for r in reversed(found)
            if (not wanted or r.call_sid == wanted) and by_date("DateCreated", r.date_created)]


@bp.get("/Recordings.json")
def list_recordings(account_sid: str) -> Any:
    return page("recordings", [r.to_json() for r in _recordings()], "Recordings.json")


@bp.get("/Recordings/<sid>.json")
def fetch_recording(account_sid: str, sid: str) -> Any:
    return jsonify(lookup(state().recordings, sid).to_json())


@bp.delete("/Recordings/<sid>.json")
def delete_recording(account_sid: str, sid: str) -> Any:
    return remove(state().recordings, sid)


@bp.get("/Recordings/<name>")
def recording_media(account_sid: str, name: str) -> Any:
    """The recording's audio (silence of its length, at most ten seconds): WAV by default or for .wav, MP3 for
    .mp3, as Twilio serves a RecordingUrl with or without an extension."""
    sid, _, extension = name.partition(".")
    recording = lookup(state().recordings, sid)
    if extension == "mp3":
        return Response(mp3(recording.duration), mimetype="audio/mpeg")
    if extension not in ("", "wav"):
        raise not_found()
    return Response(wav(recording.duration, recording.channels), mimetype="audio/x-wav")


def _call_recording(call_sid: str, sid: str) -> Recording:
    lookup(state().calls, call_sid)
    recording = lookup(state().recordings, sid)
    if recording.call_sid != call_sid:
        raise not_found()
    return recording


@bp.get("/Calls/<call_sid>/Recordings.json")
def list_call_recordings(account_sid: str, call_sid: str) -> Any:
    """A call's recordings in Twilio's call_recording shape (each with its track and its URI under the call)."""
    lookup(state().calls, call_sid)
    return page("recordings", [r.to_call_json() for r in _recordings(call_sid)], f"Calls/{call_sid}/Recordings.json")


@bp.get("/Calls/<call_sid>/Recordings/<sid>.json")
def fetch_call_recording(account_sid: str, call_sid: str, sid: str) -> Any:
    return jsonify(_call_recording(call_sid, sid).to_call_json())


@bp.delete("/Calls/<call_sid>/Recordings/<sid>.json")
def delete_call_recording(account_sid: str, call_sid: str, sid: str) -> Any:
    _call_recording(call_sid, sid)
    return remove(state().recordings, sid)
