"""The agent desk: home (status, upcoming callbacks, recent screen pops) and the thread a call is about."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import requests
from flask import Response, abort, current_app, redirect, render_template, request, stream_with_context, url_for

from callbacks.store import CALLBACKS, CallbackStore
from callbacks.windows import speak_time
from context.store import THREADS, ThreadNotFound, ThreadStore
from core.extensions import REDIS, TWILIO
from desk import bp, phone
from desk.access import can_see_thread, numbers_of
from desk.auth import check_csrf, current_agent_id, login_required
from directory.models import AgentConfig, AgentStatus
from directory.store import AGENTS
from voice import screenpop
from voice.calls import CALLS, CallStore
from voice.twilio_client import recording_media

CSP = {"default-src": "'self'", "script-src": "'self'", "style-src": "'self'", "img-src": "'self'",
       "connect-src": "'self'", "media-src": "'self'", "object-src": "'none'", "base-uri": "'none'",
       "form-action": "'self'", "frame-ancestors": "'none'"}


def content_security_policy() -> str:
    """The desk's CSP, with what the browser phone's network needs (desk/phone.py) and nothing more."""
    extra = phone.csp_sources()
    return "; ".join(" ".join((name, value, *extra.get(name, ()))) for name, value in CSP.items())


@bp.after_request
def _security_headers(response: Any) -> Any:
    """Customer text is hostile: no inline script can run on a desk page, no page can frame it, none is stored."""
    response.headers["Content-Security-Policy"] = content_security_policy()
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if request.endpoint != "desk.static":
        response.headers["Cache-Control"] = "no-store"  # pages carry customer data
    return response


def _recent_pops(agent_id: str, count: int = 10) -> list[dict[str, Any]]:
    threads: ThreadStore = THREADS.get()
    pops = []
    for pop in screenpop.recent(REDIS.get(), agent_id, count):
        subject = None
        if pop.thread_id:
            try:
                subject = threads.get(pop.thread_id, newest=0).subject
            except ThreadNotFound:
                subject = None
        pops.append({**pop.model_dump(), "when": pop.at.strftime("%b %d %H:%M UTC"), "subject": subject})
    return pops


def _upcoming(agent_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """Scheduled callbacks of the agent's numbers, soonest first, with the customer's local time."""
    store: CallbackStore = CALLBACKS.get()
    mine, now = numbers_of(agent_id), datetime.now(UTC)
    upcoming = []
    for callback_id in store.soonest(200):
        callback = store.get(callback_id)
        if callback.number in mine:
            late = max(0, int((now - callback.scheduled_for).total_seconds() // 60))
            upcoming.append({"callback": callback, "local": speak_time(callback.scheduled_for, callback.callee_zone,
                                                                      now), "late_minutes": late})
        if len(upcoming) >= limit:
            break
    return upcoming


@bp.get("/")
@login_required
def home() -> str:
    agent_id = current_agent_id() or ""
    agent = AGENTS.get().get(agent_id)
    if agent is None:
        abort(403)
    return render_template("desk/home.html", agent=agent, statuses=[s.value for s in AgentStatus],
                           upcoming=_upcoming(agent_id), pops=_recent_pops(agent_id))


@bp.post("/status")
@login_required
def set_status() -> Any:
    """Available / away / offline: what routing reads before ringing the agent."""
    check_csrf()
    status = request.form.get("status", "")
    if status not in {s.value for s in AgentStatus}:
        abort(400, "status must be available, away or offline")
    agent = AGENTS.get().get(current_agent_id() or "")
    if agent is None:
        abort(403)
    config = AgentConfig(**agent.model_dump(include=set(AgentConfig.model_fields)) | {"status": status})
    AGENTS.get().put(agent.id, config, datetime.now(UTC))
    return redirect(url_for("desk.home"))


def visible_thread(thread_id: str) -> Any:
    """The thread, if this agent may see it; the same 404 otherwise, so ids can't be probed."""
    agent_id = current_agent_id() or ""
    threads: ThreadStore = THREADS.get()
    try:
        thread = threads.get(thread_id)
    except ThreadNotFound:
        abort(404)
    if not can_see_thread(agent_id, thread_id):
        abort(404)
    return thread


def _thread_context(thread_id: str) -> dict[str, Any]:
    thread = visible_thread(thread_id)
    calls: CallStore = CALLS.get()
    callbacks: CallbackStore = CALLBACKS.get()
    zone = thread.customer.time_zone
    local = datetime.now(ZoneInfo(zone)).strftime("%-I:%M %p %a") if zone else None
    return {"thread": thread, "calls": calls.for_thread(thread_id, 10), "callbacks": callbacks.for_thread(thread_id),
            "agent": AGENTS.get().get(current_agent_id() or ""), "local_time": local, "recording_sid": recording_sid}


# A recording of this Twilio account, as a voicemail's RecordingUrl names it.
_RECORDING_URL = re.compile(r"^https?://[^/?#]+/2010-04-01/Accounts/(AC[0-9a-fA-F]{32})/Recordings/(RE[0-9a-fA-F]{32})"
                            r"(?:\.\w+)?$")


def recording_sid(url: str) -> str | None:
    """The SID of the account's recording at url, which the desk plays through itself; None for any other link."""
    match = _RECORDING_URL.match(url)
    return match[2] if match and match[1] == current_app.config.get("TWILIO_ACCOUNT_SID") else None


@bp.get("/threads/<thread_id>")
@login_required
def thread_page(thread_id: str) -> str:
    return render_template("desk/thread.html", **_thread_context(thread_id))


@bp.get("/threads/<thread_id>/panel")
@login_required
def thread_panel(thread_id: str) -> str:
    """The same view as a fragment, for the live screen pop."""
    return render_template("desk/panel.html", **_thread_context(thread_id))


@bp.get("/threads/<thread_id>/calls/<sid>/recording")
@login_required
def call_recording(thread_id: str, sid: str) -> Response:
    """A call's recording, fetched from Twilio with the account's credentials for an agent who may see the thread."""
    visible_thread(thread_id)
    calls: CallStore = CALLS.get()
    record = calls.get(sid)
    if record is None or record.thread_id != thread_id or record.recording is None:
        abort(404)
    return _play(record.recording.sid, f"call-{sid}.mp3")


@bp.get("/threads/<thread_id>/recordings/<sid>")
@login_required
def message_recording(thread_id: str, sid: str) -> Response:
    """A recording attached to one of the thread's messages (a voicemail), played as call recordings are."""
    thread = visible_thread(thread_id)
    if not any(recording_sid(a.url) == sid for message in thread.messages for a in message.attachments):
        abort(404)
    return _play(sid, f"voicemail-{sid}.mp3")


def _play(recording: str, filename: str) -> Response:
    """Stream a recording's MP3 from Twilio with the account's credentials, which the agent's browser lacks."""
    client = TWILIO.get()
    if client is None:
        abort(503, "Twilio is not configured here: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set")
    try:
        upstream = recording_media(client, recording)
    except requests.RequestException as exc:
        current_app.logger.warning("recording %s could not be fetched: %s", recording, exc)
        abort(502, "Twilio could not be reached for the recording")
    if upstream.status_code != 200:
        upstream.close()
        current_app.logger.warning("recording %s: Twilio answered %s", recording, upstream.status_code)
        abort(502, "Twilio did not give the recording")
    headers = {"Cache-Control": "private, no-store", "Content-Disposition": f'inline; filename="{filename}"'}
    if upstream.headers.get("Content-Length"):
        headers["Content-Length"] = upstream.headers["Content-Length"]
    return Response(stream_with_context(upstream.iter_content(64 * 1024)), headers=headers, mimetype="audio/mpeg")
