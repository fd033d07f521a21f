"""The callback lifecycle: every change to a callback and its attempts, as a pure function of what happened and when.

Each transition takes the current callback, the facts and the moment and returns the changed callback (a copy), or
raises Unchanged when it no longer applies (the callback moved on meanwhile). The store applies them atomically:
`store.update(callback_id, functools.partial(lifecycle.cancel, reason=...))`. Nothing here reads a clock, Redis,
Twilio or Flask; the retry jitter is drawn by the caller (`random.uniform(*JITTER)`) and passed in.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from callbacks.outcomes import RETRIED, Outcome, is_machine
from callbacks.schemas import LIVE, Adjusted, Attempt, Callback, Mode, State
from callbacks.store import Unchanged
from callbacks.windows import allowed, next_allowed, speak_time

if TYPE_CHECKING:
    from directory.models import Number

EARLY_TOLERANCE = timedelta(seconds=1)  # a dial job may arrive this early; it waits out the rest
JITTER = (0.9, 1.1)  # a retry waits the number's retry_minutes times a factor drawn from this range
NO_WINDOW = "no calling window in the next 45 days"


def claim_token(attempt: Attempt) -> str:
    """Names one claim of an attempt in the call's webhook URLs, so a call from an older claim can't close it."""
    return str(int(attempt.claimed_at.timestamp() * 1_000_000))


def retry_at(callback: Callback, number: Number, retry: int, jitter: float, now: datetime) -> datetime | None:
    """When retry number `retry` (0 first) may dial: the number's wait times jitter, then its next allowed moment."""
    minutes = number.retry_minutes[min(retry, len(number.retry_minutes) - 1)]
    return next_allowed(now + timedelta(minutes=minutes * jitter), number, callback.callee_zone)


def _copy(callback: Callback) -> Callback:
    return callback.model_copy(deep=True)


def _due(callback: Callback, when: datetime, now: datetime) -> Callback:
    """The callback scheduled for when, its local time spoken relative to now."""
    callback.state, callback.scheduled_for = State.scheduled, when
    callback.customer_local_time = speak_time(when, callback.callee_zone, now)
    return callback


def _require(condition: bool) -> None:
    if not condition:
        raise Unchanged


def _is_last(callback: Callback, attempt: int) -> bool:
    """Whether attempt is the callback's latest (a stale attempt number names an earlier one, or none)."""
    return 1 <= attempt == len(callback.attempts)


def _same_claim(callback: Callback, attempt: int, claimed_at: datetime) -> bool:
    """Whether attempt is the last one, claimed at claimed_at, and still being dialled with no call recorded."""
    return (callback.state == State.dialing and _is_last(callback, attempt)
            and callback.attempts[-1].claimed_at == claimed_at and not callback.attempts[-1].call_sid)


def claim(callback: Callback, *, attempt: int, number: Number, to: str, agent_id: str | None,
          now: datetime) -> Callback:
    """A worker takes the attempt: it is due, inside the window, and nobody took it yet."""
    _require(callback.state == State.scheduled and len(callback.attempts) + 1 == attempt)
    _require(callback.scheduled_for <= now + EARLY_TOLERANCE and allowed(now, number, callback.callee_zone))
    claimed = _copy(callback)
    claimed.attempts.append(Attempt(number=attempt, claimed_at=now, to=to, agent_id=agent_id))
    claimed.state = State.dialing
    return claimed


def record_call(callback: Callback, *, attempt: int, claimed_at: datetime, call_sid: str) -> Callback:
    """The claimed attempt's call was placed: remember its sid (unless the claim was reconciled meanwhile)."""
    _require(_is_last(callback, attempt) and callback.attempts[-1].claimed_at == claimed_at)
    _require(not callback.attempts[-1].call_sid)  # adopted meanwhile: the reconciler found this very call
    placed = _copy(callback)
    placed.attempts[-1].call_sid = call_sid
    return placed


def adopt(callback: Callback, *, attempt: int, claimed_at: datetime, call_sid: str) -> Callback:
    """A dead worker's claim: the call Twilio has for it becomes the attempt's call."""
    _require(_same_claim(callback, attempt, claimed_at))
    return record_call(callback, attempt=attempt, claimed_at=claimed_at, call_sid=call_sid)


def redial(callback: Callback, *, attempt: int, claimed_at: datetime) -> Callback:
    """A dead worker's claim with no call at Twilio: the attempt is given back, to be dialled again."""
    _require(_same_claim(callback, attempt, claimed_at))
    again = _copy(callback)
    again.attempts.pop()
    again.state = State.scheduled
    return again


def answered(callback: Callback, *, attempt: int, answered_by: str | None) -> Callback:
    """The attempt's call was answered: remember by whom; a person is now in the call, a machine is not."""
    _require(callback.state == State.dialing and _is_last(callback, attempt))
    picked = _copy(callback)
    picked.attempts[-1].answered_by = answered_by
    if not is_machine(answered_by):
        picked.state = State.in_call
    return picked


def dialling_customer(callback: Callback) -> Callback:
    """Agent first: the agent took it; from here the customer's leg decides the outcome."""
    _require(callback.state == State.dialing)
    taken = _copy(callback)
    taken.state = State.in_call
    return taken


def connected(callback: Callback) -> Callback:
    """The customer chose to talk now and is put through: the callback is done."""
    _require(callback.state == State.in_call)
    done = _copy(callback)
    done.state = State.completed
    return done


def choose_later(callback: Callback, *, attempt: int, when: datetime, now: datetime) -> Callback:
    """The customer, in the call, picked a later time: the attempt ends rescheduled and the callback waits."""
    _require(callback.state == State.in_call and _is_last(callback, attempt))
    later = _copy(callback)
    later.attempts[-1].outcome, later.attempts[-1].ended_at = Outcome.rescheduled, now
    return _due(later, when, now)


def cancel(callback: Callback, *, reason: str) -> Callback:
    """No more calls: the customer, an agent or the thread said so."""
    _require(callback.state in LIVE)
    canceled = _copy(callback)
    canceled.state, canceled.reason = State.canceled, reason
    return canceled


def reschedule(callback: Callback, *, when: datetime, adjusted: Adjusted | None, now: datetime) -> Callback:
    """The platform moved a waiting callback to another time."""
    _require(callback.state == State.scheduled)
    moved = _copy(callback)
    moved.adjusted = adjusted
    return _due(moved, when, now)


def postpone(callback: Callback, *, due: datetime, when: datetime, now: datetime) -> Callback:
    """The dialer moves a callback it found due at `due` to when (outside the window, no agent); a newer time stands."""
    _require(callback.state == State.scheduled and callback.scheduled_for == due)
    return _due(_copy(callback), when, now)


def call_now(callback: Callback, *, agent_id: str, now: datetime) -> Callback:
    """An agent calls a waiting callback now, their phone first."""
    _require(callback.state == State.scheduled)
    now_with_agent = _copy(callback)
    now_with_agent.mode, now_with_agent.agent_id, now_with_agent.scheduled_for = Mode.agent_first, agent_id, now
    return now_with_agent


def exhaust(callback: Callback, *, reason: str = NO_WINDOW) -> Callback:
    """A waiting callback that can never be dialled (no calling window ahead) ends."""
    _require(callback.state == State.scheduled)
    ended = _copy(callback)
    ended.state, ended.reason = State.exhausted, reason
    return ended


def close_attempt(callback: Callback, *, attempt: int, outcome: Outcome, number: Number | None, jitter: float,
                  now: datetime) -> Callback:
    """An attempt's call ended with outcome: retried by the number's policy inside the window, else the end."""
    _require(1 <= attempt <= len(callback.attempts) and not callback.attempts[attempt - 1].outcome)
    closed = _copy(callback)
    closed.attempts[attempt - 1].outcome, closed.attempts[attempt - 1].ended_at = outcome, now
    if closed.state not in (State.dialing, State.in_call) or len(closed.attempts) != attempt:
        return closed  # the call already decided (connected, rescheduled, canceled)
    if outcome == Outcome.invalid:
        closed.state, closed.reason = State.failed, "the number can't be called"
    elif outcome not in RETRIED:
        closed.state = State.completed
    elif number is None or attempt >= number.max_attempts:
        closed.state, closed.reason = State.exhausted, f"no answer after {attempt} attempts"
    elif (later := retry_at(closed, number, attempt - 1, jitter, now)) is None:
        closed.state, closed.reason = State.exhausted, "no calling window left"
    else:
        _due(closed, later, now)
    return closed
