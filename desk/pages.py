"""The agent desk: home (status, upcoming callbacks, recent screen pops) and the thread a call is about."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Response, abort, current_app, redirect, render_template, request, stream_with_context, url_for

from callbacks.store import CALLBACKS, CallbackStore
from callbacks.windows import callee_zone
from context.store import THREADS, ThreadNotFound, ThreadStore
from core.extensions import REDIS, TWILIO
from desk import bp, briefing, phone, words
from desk.access import can_see_thread, numbers_of
from desk.auth import check_csrf, current_agent_id, login_required
from desk.wording import agent_zone
from directory.models import AgentConfig, AgentStatus
from directory.store import AGENTS, NUMBERS
from voice import screenpop
from voice.calls import CALLS, CallStore
from voice.twilio_client import recording_media

CSP = {"default-src": "'self'", "script-src": "'self'", "style-src": "'self'", "img-src": "'self'",
       "connect-src": "'self'", "media-src": "'self'", "object-src": "'none'", "base-uri": "'none'",
       "form-action": "'self'", "frame-ancestors": "'none'"}
NEWEST_MESSAGES = 20  # what the briefing shows of a conversation, newest first
NEWEST_LOGS = 20


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
    """The agent's newest screen pops, each with its thread's subject (None: no conversation was found)."""
    threads: ThreadStore = THREADS.get()
    pops = []
    for pop in screenpop.recent(REDIS.get(), agent_id, count):
        subject = None
        if pop.thread_id:
            try:
                subject = threads.get(pop.thread_id, newest=0).subject
            except ThreadNotFound:
                subject = None
        pops.append({"id": pop.id, "at": pop.at, "thread_id": pop.thread_id, "call_sid": pop.call_sid,
                     "subject": subject})
    return pops


def _upcoming(agent_id: str, limit: int = 20) -> list[dict[str, Any]]:
    """Scheduled callbacks of the agent's numbers, soonest first, with the customer's name and subject."""
    store: CallbackStore = CALLBACKS.get()
    threads: ThreadStore = THREADS.get()
    mine, now = numbers_of(agent_id), datetime.now(UTC)
    upcoming = []
    for callback_id in store.soonest(200):
        callback = store.get(callback_id)
        if callback.number in mine:
            try:
                thread = threads.get(callback.thread_id, newest=0)
            except ThreadNotFound:
                thread = None  # the call is still placed: the agent sees it, without its conversation
            late = max(0, int((now - callback.scheduled_for).total_seconds() // 60))
            upcoming.append({"callback": callback, "thread": thread, "late_minutes": late})
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
    return render_template("desk/home.html", agent=agent, statuses=list(AgentStatus),
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


def _thread_context(thread_id: str, call_sid: str | None = None) -> dict[str, Any]:
    """The briefing: who, their time, why (the call named by the screen pop, else the newest), what happened."""
    thread = visible_thread(thread_id)
    calls = CALLS.get().for_thread(thread_id, 10)
    callbacks: CallbackStore = CALLBACKS.get()
    agent, now = AGENTS.get().get(current_agent_id() or ""), datetime.now(UTC)
    call = briefing.current_call(calls, call_sid)
    number = NUMBERS.get().get(call.number) if call and call.number else None
    # A customer whose zone neither they nor their phone tell lives, as far as anyone knows, where the line does.
    customer_zone = callee_zone(thread.customer.time_zone, thread.customer.phone,
                                number.time_zone if number else agent_zone(agent))
    names = words.names_of((a.id, a.name) for a in AGENTS.get().all())
    shown = thread.messages[-NEWEST_MESSAGES:][::-1]
    return {"thread": thread, "agent": agent, "call": call, "call_state": briefing.call_state(call, now),
            "live": briefing.is_live(call, now), "reason": words.reason(call, thread.subject),
            "customer_time": words.their_time(now, customer_zone), "messages": shown,
            "earlier": len(thread.messages) - len(shown), "logs": thread.logs[-NEWEST_LOGS:][::-1],
            "timeline": briefing.timeline(calls, callbacks.for_thread(thread_id), names, now),
            "recording_sid": recording_sid}


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
    return render_template("desk/thread.html", **_thread_context(thread_id, request.args.get("call")))


@bp.get("/threads/<thread_id>/panel")
@login_required
def thread_panel(thread_id: str) -> str:
    """The same view as a fragment, for the live screen pop (call: the call it popped for)."""
    return render_template("desk/panel.html", **_thread_context(thread_id, request.args.get("call")))


@bp.get("/calls/<sid>/panel")
@login_required
def call_panel(sid: str) -> str:
    """A call no conversation was found for, as the screen pop shows it, to agents of the number it reached."""
    call = CALLS.get().get(sid)
    if call is None or call.number not in numbers_of(current_agent_id() or ""):
        abort(404)
    names = words.names_of((a.id, a.name) for a in AGENTS.get().all())
    now = datetime.now(UTC)
    return render_template("desk/call_panel.html", call=call, call_state=briefing.call_state(call, now),
                           live=briefing.is_live(call, now), story=words.story(call, names))


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
