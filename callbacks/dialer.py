"""Dialling callbacks: RQ jobs that take ids, re-read state, claim each attempt once, and retry by outcome."""

from __future__ import annotations

import functools
import logging
import math
import os
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, current_app
from rq import Queue
from twilio.base.exceptions import TwilioRestException

from callbacks.outcomes import RETRIED, Outcome
from callbacks.schemas import LIVE, Attempt, Callback, Mode, State
from callbacks.store import CallbackStore, Unchanged
from callbacks.windows import allowed, next_allowed, speak_time
from core import keys
from core.urls import NoPublicURL, absolute_url, public_base
from directory.routing import choose_agent

log = logging.getLogger(__name__)

EARLY_TOLERANCE = timedelta(seconds=1)
INVALID_NUMBER_CODES = {21211, 21214, 21215, 21216, 21217, 21219, 13223, 13224}
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]

# KEYS: the rate zset. ARGV: now (ms), limit per second, member. 0 when a slot was taken, else ms to wait.
_RATE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - 1000)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
  redis.call('PEXPIRE', KEYS[1], 2000)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + 1000 - tonumber(ARGV[1])
"""


def callback_store() -> CallbackStore:
    return current_app.extensions["threadline.callbacks"]


def job_queue() -> Queue:
    return current_app.extensions["threadline.queue"]


def schedule(queue: Queue, callback: Callback) -> None:
    """Queue the dial of the callback's next attempt at its time (never before: RQ counts whole seconds)."""
    attempt = len(callback.attempts) + 1
    at = datetime.fromtimestamp(math.ceil(callback.scheduled_for.timestamp()), tz=UTC)
    job_id = dial_job_id(callback)
    if at <= datetime.now(UTC) + EARLY_TOLERANCE:  # the job itself waits out the last fraction of a second
        queue.enqueue("callbacks.dialer.dial", callback.id, attempt, job_id=job_id)
    else:
        queue.enqueue_at(at, "callbacks.dialer.dial", callback.id, attempt, job_id=job_id)


def tell(callback: Callback, event: str, message: str, **data: Any) -> None:
    """Send the change back into the thread, for the platform to post."""
    outbox = current_app.extensions.get("threadline.outbox")
    if outbox is not None:
        outbox.emit(callback.thread_id, event, {"callback_id": callback.id, "state": callback.state.value, **data},
                    message)


def cancel(store: CallbackStore, callback_id: str, reason: str) -> Callback | None:
    """Cancel a live callback; None when it had already ended."""

    def stop(callback: Callback) -> Callback:
        if callback.state not in LIVE:
            raise Unchanged
        callback.state, callback.reason = State.canceled, reason
        return callback

    result = store.update(callback_id, stop)
    if result.state != State.canceled or result.reason != reason:
        return None
    tell(result, "callback.canceled", "Your callback is canceled. Reply here if you still need us.", reason=reason)
    return result


def cancel_for_thread(thread_id: str, reason: str) -> None:
    """Cancel the thread's callback if it is still waiting (the customer called in, or the thread is resolved)."""
    live = callback_store().live_for_thread(thread_id)
    if live is not None and live.state == State.scheduled:
        cancel(callback_store(), live.id, reason)


def _take_rate_slot(limit: float) -> None:
    """Block until the outbound calls-per-second budget shared by every worker allows one more call."""
    redis_client = current_app.extensions["threadline.redis"]
    script = redis_client.register_script(_RATE)
    while True:
        now_ms = int(time.time() * 1000)
        wait = script(keys=[keys.DIAL_RATE], args=[now_ms, limit, f"{now_ms}-{random.random()}"])
        if int(wait) <= 0:
            return
        time.sleep(int(wait) / 1000)


@functools.lru_cache(maxsize=4)
def _app_for(environment: tuple[tuple[str, str], ...]) -> Flask:
    from app import create_app  # the worker builds the app from the same environment as the web process

    return create_app()


def worker_app() -> Flask:
    """The app for jobs, built once per environment: the worker builds it before forking its work horses."""
    return _app_for(tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(_APP_ENV_PREFIXES))))


_APP_ENV_PREFIXES = ("REDIS_URL", "THREADLINE_", "TWILIO_", "PUBLIC_BASE_URL")


def dial(callback_id: str, attempt: int) -> str:
    """RQ job: place the call for the callback's attempt, if it is still wanted. Returns what it did."""
    with worker_app().app_context():
        return _dial(callback_id, attempt)


def _dial(callback_id: str, attempt: int) -> str:
    store, now = callback_store(), datetime.now(UTC)
    callback = store.get(callback_id)
    number = current_app.extensions["threadline.numbers"].get(callback.number)
    if callback.state == State.dialing and callback.attempts and callback.attempts[-1].number == attempt:
        age = (now - callback.attempts[-1].claimed_at).total_seconds()
        if age < current_app.config["RECONCILE_AFTER_SECONDS"]:
            return "in progress elsewhere"  # another worker is placing this call right now
        return reconcile(callback, attempt)
    if callback.state != State.scheduled or len(callback.attempts) + 1 != attempt:
        return "not wanted"
    if now < callback.scheduled_for:
        early = (callback.scheduled_for - now).total_seconds()
        if early > EARLY_TOLERANCE.total_seconds() * 2:
            return "not yet"  # rescheduled: the job for the new time will dial
        time.sleep(early)  # RQ's scheduler counts whole seconds: never dial early
        now = datetime.now(UTC)
    if number is None:
        cancel(store, callback_id, "the support number was removed")
        return "canceled"
    if not allowed(now, number, callback.callee_zone):
        later = next_allowed(now, number, callback.callee_zone)
        if later is None:
            return _end_without_window(callback_id)
        return _move(callback, later, "outside the calling window at dial time")

    try:
        public_base()  # before the claim: a job that cannot give Twilio absolute URLs must not use up an attempt
    except NoPublicURL as exc:
        log.error("callback %s attempt %s not dialled, it stays scheduled: %s", callback_id, attempt, exc)
        return "no public URL"
    # The rate slot comes before the claim, so a claimed attempt is always dialled within the REST timeout:
    # a claim older than that means its worker died (see reconcile).
    agent = _agent_for(callback, number) if callback.mode == Mode.agent_first else None
    if callback.mode == Mode.agent_first and agent is None:
        return _retry_without_agent(callback, number)
    target = callback.phone if agent is None else (agent.phone or f"client:{agent.client_identity}")
    _take_rate_slot(current_app.config.get("DIAL_RATE_LIMIT", 1))
    now = datetime.now(UTC)

    def claim(current: Callback) -> Callback:
        # Re-checked on the current record: a reschedule may have landed while we waited for the rate slot.
        if current.state != State.scheduled or len(current.attempts) + 1 != attempt:
            raise Unchanged
        if current.scheduled_for > now + EARLY_TOLERANCE or not allowed(now, number, current.callee_zone):
            raise Unchanged
        current.attempts.append(Attempt(number=attempt, claimed_at=now, to=target,
                                        agent_id=agent.id if agent else None))
        current.state = State.dialing
        return current

    claimed = store.update(callback_id, claim)
    if claimed.state != State.dialing or claimed.attempts[-1].claimed_at != now:
        return "claimed elsewhere"
    return _place(claimed, attempt, number)


def _place(callback: Callback, attempt: int, number: Any) -> str:
    client = current_app.extensions["threadline.twilio"]
    claimed = callback.attempts[-1]
    query = f"cb={callback.id}&attempt={attempt}&claim={claim_token(claimed)}"
    if callback.mode == Mode.agent_first:
        # The agent's phone or browser rings first; the customer is dialled from the agent's leg.
        call_args = {"to": claimed.to, "url": absolute_url(f"/voice/callback/agent?{query}&agent={claimed.agent_id}"),
                     "status_callback": absolute_url(f"/voice/callback/status?{query}&leg=agent")}
    else:
        call_args = {"to": callback.phone, "url": absolute_url(f"/voice/callback/answer?{query}"),
                     "status_callback": absolute_url(f"/voice/callback/status?{query}"),
                     "machine_detection": "DetectMessageEnd"}
    try:
        call = client.calls.create(from_=number.caller_id or number.number, status_callback_event=STATUS_EVENTS,
                                   timeout=30, **call_args)
    except TwilioRestException as exc:
        outcome = Outcome.invalid if exc.code in INVALID_NUMBER_CODES else Outcome.failed
        log.warning("callback %s attempt %s: Twilio refused the call (%s)", callback.id, attempt, exc.code)
        finish_attempt(callback.id, attempt, outcome)
        return outcome
    callback_store().remember_call(call.sid, callback.id, attempt)
    claimed_at = callback.attempts[-1].claimed_at

    def record(current: Callback) -> Callback:
        if len(current.attempts) != attempt or current.attempts[-1].claimed_at != claimed_at:
            raise Unchanged  # reconciled meanwhile: the remembered call is found by its owner record
        current.attempts[-1].call_sid = call.sid
        return current

    callback_store().update(callback.id, record)
    return f"dialled {call.sid}"


def _agent_for(callback: Callback, number: Any) -> Any:
    """The callback's agent when they are available, else who would take an inbound call on the thread."""
    agents = current_app.extensions["threadline.agents"]
    if callback.agent_id:
        chosen = agents.get(callback.agent_id)
        if chosen is not None and chosen.takes_calls:
            return chosen
    thread = current_app.extensions["threadline.threads"].get(callback.thread_id, newest=20)
    return choose_agent(number, thread, agents)


def _retry_without_agent(callback: Callback, number: Any) -> str:
    """Agent first with nobody available: try again later, as after any failed attempt (no call, no claim)."""
    now = datetime.now(UTC)
    minutes = number.retry_minutes[min(len(callback.attempts), len(number.retry_minutes) - 1)]
    later = next_allowed(now + timedelta(minutes=minutes), number, callback.callee_zone)
    if later is None:
        return _end_without_window(callback.id)
    return _move(callback, later, "no agent available")


def reconcile(callback: Callback, attempt: int) -> str:
    """An attempt claimed but with no call recorded (a worker died): adopt the call if Twilio has one, else redial."""
    claimed = callback.attempts[attempt - 1]
    if claimed.call_sid:
        return "already placed"
    client = current_app.extensions["threadline.twilio"]
    since = claimed.claimed_at - timedelta(seconds=5)
    mine = (callback.id, attempt)
    # Twilio filters StartTime by date (YYYY-MM-DD, UTC): list that day on, then keep what started since the claim.
    # The claim names whom it rings first (the customer, or the agent): a call there since the claim, that no
    # other attempt owns, is this attempt's call.
    listed = client.calls.list(to=claimed.to or callback.phone, start_time_after=since.date().isoformat(), limit=50)
    calls = [c for c in listed if _started_since(c, since) and c.parent_call_sid is None
             and callback_store().call_owner(c.sid) in (None, mine)]
    calls.sort(key=lambda c: c.date_created or datetime.now(UTC))

    def same_claim(current: Callback) -> bool:
        return (current.state == State.dialing and len(current.attempts) == attempt
                and current.attempts[-1].claimed_at == claimed.claimed_at and not current.attempts[-1].call_sid)

    if calls:
        adopted = calls[0]
        callback_store().remember_call(adopted.sid, callback.id, attempt)

        def adopt(current: Callback) -> Callback:
            if not same_claim(current):
                raise Unchanged
            current.attempts[-1].call_sid = adopted.sid
            return current

        callback_store().update(callback.id, adopt)
        return f"adopted {adopted.sid}"

    def redial(current: Callback) -> Callback:
        if not same_claim(current):
            raise Unchanged
        current.attempts.pop()
        current.state = State.scheduled
        return current

    again = callback_store().update(callback.id, redial)
    if again.state == State.scheduled and len(again.attempts) == attempt - 1:
        schedule(job_queue(), again)
        return "redial"
    return "changed meanwhile"


def _started_since(call: Any, since: datetime) -> bool:
    """Whether Twilio's call started (or, not started yet, was created) at or after since."""
    started = call.start_time or call.date_created
    return started is None or started >= since.replace(microsecond=0)


def claim_token(attempt: Attempt) -> str:
    """Names one claim of an attempt in the call's webhook URLs, so a call from an older claim can't close it."""
    return str(int(attempt.claimed_at.timestamp() * 1_000_000))





def dial_job_id(callback: Callback) -> str:
    """The dial job of the callback's next attempt at its due time: one id, whoever queues it."""
    return f"dial-{callback.id}-{len(callback.attempts) + 1}-{math.ceil(callback.scheduled_for.timestamp())}"



def _end_without_window(callback_id: str) -> str:
    def end(current: Callback) -> Callback:
        if current.state != State.scheduled:
            raise Unchanged
        current.state, current.reason = State.exhausted, "no calling window in the next 45 days"
        return current

    ended = callback_store().update(callback_id, end)
    if ended.state == State.exhausted:
        tell(ended, "callback.exhausted", "We couldn't find a time to call you. Reply here and we'll pick it up.")
    return "no window"


def _move(seen: Callback, when: datetime, reason: str) -> str:
    callback_id = seen.id

    def move(current: Callback) -> Callback:
        if current.state != State.scheduled or current.scheduled_for != seen.scheduled_for:
            raise Unchanged  # rescheduled meanwhile: the newer time stands
        current.scheduled_for = when
        current.customer_local_time = speak_time(when, current.callee_zone, datetime.now(UTC))
        return current

    moved = callback_store().update(callback_id, move)
    schedule(job_queue(), moved)
    log.info("callback %s moved: %s", callback_id, reason)
    return "moved"


def finish_attempt(callback_id: str, attempt: int, outcome: Outcome) -> Callback:
    """Close an attempt with its outcome; a failed one is retried by the number's policy or the callback ends."""
    now = datetime.now(UTC)
    number = current_app.extensions["threadline.numbers"].get(callback_store().get(callback_id).number)

    def close(current: Callback) -> Callback:
        if attempt > len(current.attempts) or current.attempts[attempt - 1].outcome:
            raise Unchanged
        current.attempts[attempt - 1].outcome, current.attempts[attempt - 1].ended_at = outcome, now
        if current.state not in (State.dialing, State.in_call) or len(current.attempts) != attempt:
            return current  # the IVR already decided (connected, rescheduled, canceled)
        if outcome == Outcome.invalid:
            current.state, current.reason = State.failed, "the number can't be called"
        elif outcome not in RETRIED:
            current.state = State.completed
        elif number is None or attempt >= number.max_attempts:
            current.state, current.reason = State.exhausted, f"no answer after {attempt} attempts"
        else:
            minutes = number.retry_minutes[min(attempt - 1, len(number.retry_minutes) - 1)]
            delay = timedelta(minutes=minutes * random.uniform(0.9, 1.1))
            later = next_allowed(now + delay, number, current.callee_zone)
            if later is None:
                current.state, current.reason = State.exhausted, "no calling window left"
            else:
                current.state, current.scheduled_for = State.scheduled, later
                current.customer_local_time = speak_time(later, current.callee_zone, now)
        return current

    closed = callback_store().update(callback_id, close)
    if closed.state == State.scheduled and len(closed.attempts) == attempt:
        schedule(job_queue(), closed)
        tell(closed, "call.attempt_failed", f"We tried to call you and couldn't reach you. We'll try again "
             f"{closed.customer_local_time}. Reply here to pick another time.", outcome=outcome, attempt=attempt)
    elif closed.state == State.exhausted and closed.attempts[-1].outcome == outcome:
        tell(closed, "callback.exhausted", "We couldn't reach you by phone. Reply here and we'll pick it up.",
             attempts=attempt)
    return closed
