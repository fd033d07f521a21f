"""What an agent does from the desk: call a customer now, and close a call with a disposition and notes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for

from callbacks import dialer
from callbacks.api import open_callback
from callbacks.schemas import CallbackIn, Mode, State
from callbacks.store import CallbackNotFound, CallbackStore, Unchanged
from callbacks.windows import allowed
from core.api import ApiError
from desk import bp
from desk.access import numbers_of, thread_numbers
from desk.auth import current_agent_id, login_required
from desk.pages import visible_thread
from voice.calls import CallStore

DISPOSITIONS = {
    "resolved": "Thanks for talking with us. We've marked this as solved; reply here if anything comes back.",
    "follow-up": "Thanks for talking with us. We'll follow up here with what we find.",
    "no-answer": "We tried to reach you by phone. Reply here to pick a time that suits you.",
    "wrong-number": "We couldn't reach you on the number we have. Reply here with a better one.",
    "other": "Thanks for talking with us.",
}
MAX_NOTES = 4000


def _callbacks() -> CallbackStore:
    return current_app.extensions["threadline.callbacks"]


def _back(thread_id: str) -> Any:
    return redirect(url_for("desk.thread_page", thread_id=thread_id))


@bp.post("/threads/<thread_id>/call-now")
@login_required
def call_now(thread_id: str) -> Any:
    """An agent-first callback to the thread's customer, now, ringing this agent first."""
    thread = visible_thread(thread_id)
    agent_id = current_agent_id() or ""
    live = _callbacks().live_for_thread(thread.id)
    if live is not None:
        return _call_pending_now(live.id)
    number = sorted(numbers_of(agent_id) & thread_numbers(thread.id))[0]
    try:
        callback, _ = open_callback(thread.id, CallbackIn(when="asap", number=number, mode=Mode.agent_first,
                                                          agent_id=agent_id))
    except ApiError as exc:
        flash(f"Can't call now: {exc.message}")
        return _back(thread.id)
    flash(f"Calling {thread.customer.name or 'the customer'}: your phone rings first.")
    return _back(callback.thread_id)


@bp.post("/callbacks/<callback_id>/call-now")
@login_required
def call_pending_now(callback_id: str) -> Any:
    return _call_pending_now(callback_id)


def _call_pending_now(callback_id: str) -> Any:
    """A waiting callback becomes agent first, with this agent, due now (if the calling window allows)."""
    try:
        pending = _callbacks().get(callback_id)
    except CallbackNotFound:
        abort(404)
    visible_thread(pending.thread_id)
    agent_id, now = current_agent_id() or "", datetime.now(UTC)
    number = current_app.extensions["threadline.numbers"].get(pending.number)
    if number is None or agent_id not in number.agents:
        abort(404)
    if not allowed(now, number, pending.callee_zone):
        flash("It's outside the customer's calling window (or the number's hours) now.")
        return _back(pending.thread_id)

    def now_with_me(current: Any) -> Any:
        if current.state != State.scheduled:
            raise Unchanged
        current.mode, current.agent_id, current.scheduled_for = Mode.agent_first, agent_id, now
        return current

    moved = _callbacks().update(callback_id, now_with_me)
    if moved.state != State.scheduled or moved.scheduled_for != now:
        flash(f"That callback is {moved.state.value} already.")
        return _back(pending.thread_id)
    dialer.schedule(current_app.extensions["threadline.queue"], moved)
    flash("Calling now: your phone rings first.")
    return _back(pending.thread_id)


@bp.post("/threads/<thread_id>/disposition")
@login_required
def disposition(thread_id: str) -> Any:
    """How the call ended, and notes: kept on the call and sent back into the thread."""
    thread = visible_thread(thread_id)
    chosen, notes = request.form.get("disposition", ""), request.form.get("notes", "").strip()
    if chosen not in DISPOSITIONS:
        abort(400, "disposition must be one of " + ", ".join(DISPOSITIONS))
    if len(notes) > MAX_NOTES:
        abort(400, f"notes: at most {MAX_NOTES} characters")
    calls: CallStore = current_app.extensions["threadline.calls"]
    latest = next(iter(calls.for_thread(thread.id, 1)), None)
    agent_id = current_agent_id() or ""
    if latest is not None:
        calls.step(latest.sid, "disposition", value=chosen, agent_id=agent_id, notes=notes)
    current_app.extensions["threadline.outbox"].emit(
        thread.id, "call.disposition",
        {"disposition": chosen, "notes": notes, "agent_id": agent_id, "call_sid": latest.sid if latest else None},
        DISPOSITIONS[chosen])
    flash("Saved, and sent to the conversation.")
    return _back(thread.id)
