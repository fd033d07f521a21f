"""What an agent does from the desk: call a customer now, and close a call with a disposition and notes."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from flask import abort, flash, redirect, request, url_for

from callbacks import dialer, lifecycle
from callbacks.api import open_callback
from callbacks.outcomes import Outcome
from callbacks.schemas import CallbackIn, Mode, State
from callbacks.store import CALLBACKS, CallbackNotFound
from callbacks.windows import allowed
from context.events import OUTBOX, EventType, new_event
from core.api import ApiError
from core.extensions import QUEUE
from desk import bp
from desk.access import numbers_of, thread_numbers
from desk.auth import current_agent_id, login_required
from desk.pages import visible_thread
from directory.store import NUMBERS
from voice.calls import CALLS, CallStore

DISPOSITIONS = {
    "resolved": "Thanks for talking with us. We've marked this as solved; reply here if anything comes back.",
    "follow-up": "Thanks for talking with us. We'll follow up here with what we find.",
    Outcome.no_answer: "We tried to reach you by phone. Reply here to pick a time that suits you.",
    "wrong-number": "We couldn't reach you on the number we have. Reply here with a better one.",
    "other": "Thanks for talking with us.",
}
MAX_NOTES = 4000


def _back(thread_id: str) -> Any:
    return redirect(url_for("desk.thread_page", thread_id=thread_id))


@bp.post("/threads/<thread_id>/call-now")
@login_required
def call_now(thread_id: str) -> Any:
    """An agent-first callback to the thread's customer, now, ringing this agent first."""
    thread = visible_thread(thread_id)
    agent_id = current_agent_id() or ""
    live = CALLBACKS.get().live_for_thread(thread.id)
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
        pending = CALLBACKS.get().get(callback_id)
    except CallbackNotFound:
        abort(404)
    visible_thread(pending.thread_id)
    agent_id, now = current_agent_id() or "", datetime.now(UTC)
    number = NUMBERS.get().get(pending.number)
    if number is None or agent_id not in number.agents:
        abort(404)
    if not allowed(now, number, pending.callee_zone):
        flash("It's outside the customer's calling window (or the number's hours) now.")
        return _back(pending.thread_id)

    moved = CALLBACKS.get().update(callback_id, functools.partial(lifecycle.call_now, agent_id=agent_id, now=now))
    if moved.state != State.scheduled or moved.scheduled_for != now:
        flash(f"That callback is {moved.state.value} already.")
        return _back(pending.thread_id)
    dialer.schedule(QUEUE.get(), moved, now)
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
    calls: CallStore = CALLS.get()
    latest = next(iter(calls.for_thread(thread.id, 1)), None)
    agent_id = current_agent_id() or ""
    event = new_event(
        thread.id, EventType.call_disposition,
        {"disposition": chosen, "notes": notes, "agent_id": agent_id, "call_sid": latest.sid if latest else None},
        DISPOSITIONS[chosen])
    if latest is not None:  # kept on the call, and told, in one transaction
        calls.step(latest.sid, "disposition", announce=[event], value=chosen, agent_id=agent_id, notes=notes)
    else:  # no call to keep it on: the event is the whole change
        OUTBOX.get().send(OUTBOX.get().write([event]))
    flash("Saved, and sent to the conversation.")
    return _back(thread.id)
