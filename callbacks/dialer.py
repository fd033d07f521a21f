"""Dialling callbacks: RQ jobs that take ids, re-read state, claim each attempt once, and retry by outcome.

What may change a callback is decided in callbacks.lifecycle; this module does the I/O around it (Twilio, the
queue, the dial rate, events). Functions that decide by time take `now`, so a test can drive it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from flask import current_app
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job
from twilio.base.exceptions import TwilioRestException

from callbacks import lifecycle
from callbacks.jobs import job_app
from callbacks.lifecycle import EARLY_TOLERANCE
from callbacks.outcomes import Outcome
from callbacks.schemas import Callback, Mode, State
from callbacks.store import CALLBACKS, CallbackStore
from callbacks.windows import allowed, next_allowed
from context.events import Event, EventType, new_event
from context.store import THREADS
from core import keys, logs
from core.extensions import QUEUE, REDIS, TWILIO
from core.metrics import DIAL_LATENESS, RATE_LIMIT_WAIT_SECONDS, RATE_LIMIT_WAITS
from core.urls import NoPublicURL, absolute_url, public_base
from directory.routing import choose_agent
from directory.store import AGENTS, NUMBERS
from reports.counters import REPORTS

log = logging.getLogger(__name__)

INVALID_NUMBER_CODES = {21211, 21214, 21215, 21216, 21217, 21219, 13223, 13224}
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]  # Twilio's StatusCallbackEvent values
# What a dial job returns when its call request failed: refused or cut (nothing more can reach Twilio), or unanswered.
TWILIO_UNREACHABLE, TWILIO_SLOW = "Twilio unreachable", "Twilio did not answer in time"
# A dial job is queued this long before its time (the worker picks it up at once); the job waits out the rest.
AHEAD = timedelta(milliseconds=250)

# Dial slots are this much more than 1/limit apart: a call may reach Twilio a little later after its slot than the
# call `limit` slots before it did (a busy machine), and 4 % of a second's worth of slots (40 ms) absorbs that, so no
# second at Twilio holds more than the limit; 96 % of the limit is still used.
RATE_HEADROOM = 1.04
# A dial job gets this long (s), rather than rq's 3 minutes: a dial takes the REST timeout (10 s) at most, and a job
# stuck past that is cut (rq's SIGALRM death penalty, in the worker's own process) so the worker goes on.
DIAL_TIMEOUT = 30

# KEYS: the next free dial slot (us, by Redis's clock, so every host's workers share one schedule). ARGV: the spacing
# (us). Takes the next slot (now, or `spacing` after the slot before it if that is later) and returns us until it.
_RATE = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local after = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX', math.ceil((after - now) / 1000) + 1000)
return slot - now
"""


def schedule(queue: Queue, callback: Callback, now: datetime) -> None:
    """Queue the dial of the callback's next attempt if it is due; a later one stays in the due index, which the
    clock's dispatcher reads to queue it the moment it is due."""
    if callback.scheduled_for <= now + AHEAD:
        enqueue_dial(queue, callback)


def enqueue_dial(queue: Queue, callback: Callback, *, replace: bool = False) -> bool:
    """Queue the dial job of the callback's next attempt once; False when that job exists already. replace: a job
    of that id left by a dead worker is dropped first (the same id again, so the next sweep sees it waiting)."""
    job_id = dial_job_id(callback)
    if replace:
        with contextlib.suppress(NoSuchJobError):
            Job.fetch(job_id, connection=queue.connection).delete()
    try:
        queue.enqueue(dial, callback.id, len(callback.attempts) + 1, job_id=job_id, unique=True,
                      job_timeout=DIAL_TIMEOUT)
    except DuplicateJobError:
        return False
    return True


def dial_job_id(callback: Callback) -> str:
    """The dial job of the callback's next attempt at its due time: one id, whoever queues it."""
    return _job_id(callback, len(callback.attempts) + 1)


def claimed_job_id(callback: Callback) -> str:
    """The dial job that claimed the callback's last attempt."""
    return _job_id(callback, len(callback.attempts))


def _job_id(callback: Callback, attempt: int) -> str:
    return f"dial-{callback.id}-{attempt}-{int(callback.scheduled_for.timestamp() * 1000)}"


def news(callback: Callback, event: EventType, message: str, **data: Any) -> Event:
    """The change as the thread's platform hears it; the store writes it with the change (see CallbackStore.update)."""
    return new_event(callback.thread_id, event, {"callback_id": callback.id, "state": callback.state.value, **data},
                     message)


def cancel(store: CallbackStore, callback_id: str, reason: str) -> Callback | None:
    """Cancel a live callback; None when it had already ended."""
    result = store.update(callback_id, functools.partial(lifecycle.cancel, reason=reason), announce=lambda canceled: [
        news(canceled, EventType.callback_canceled, "Your callback is canceled. Reply here if you still need us.",
             reason=reason)])
    if result.state != State.canceled or result.reason != reason:
        return None
    return result


def cancel_for_thread(thread_id: str, reason: str) -> None:
    """Cancel the thread's callback if it is still waiting (the customer called in, or the thread is resolved)."""
    live = CALLBACKS.get().live_for_thread(thread_id)
    if live is not None and live.state == State.scheduled:
        cancel(CALLBACKS.get(), live.id, reason)


def reserve_slot(redis_client: Any, limit: float) -> float:
    """Take the next slot of the calls-per-second budget every worker shares: seconds until it (0: now)."""
    spacing = int(1_000_000 * RATE_HEADROOM / limit)
    return int(redis_client.register_script(_RATE)(keys=[keys.DIAL_SLOT], args=[spacing])) / 1_000_000


def _wait_for_rate_slot(limit: float) -> None:
    """Reserve the next dial slot and sleep until it: a slot is taken once, never polled for."""
    wait = reserve_slot(REDIS.get(), limit)
    if wait > 0:
        RATE_LIMIT_WAITS.inc()
        RATE_LIMIT_WAIT_SECONDS.inc(wait)
    time.sleep(wait)


def dial(callback_id: str, attempt: int) -> str:
    """RQ job: place the call for the callback's attempt, if it is still wanted. Returns what it did."""
    with job_app().app_context(), logs.bound(callback_id=callback_id):
        return dial_attempt(callback_id, attempt, datetime.now(UTC))


def dial_attempt(callback_id: str, attempt: int, now: datetime) -> str:
    """Place the call for the callback's attempt as of now, if it is still wanted. Returns what it did."""
    store = CALLBACKS.get()
    callback = store.get(callback_id)
    number = NUMBERS.get().get(callback.number)
    if callback.state == State.dialing and callback.attempts and callback.attempts[-1].number == attempt:
        age = (now - callback.attempts[-1].claimed_at).total_seconds()
        if age < current_app.config["RECONCILE_AFTER_SECONDS"]:
            return "in progress elsewhere"  # another worker is placing this call right now
        return reconcile(callback, attempt, now)
    if callback.state != State.scheduled or len(callback.attempts) + 1 != attempt:
        return "not wanted"
    if now < callback.scheduled_for:
        early = (callback.scheduled_for - now).total_seconds()
        if early > EARLY_TOLERANCE.total_seconds() * 2:
            return "not yet"  # rescheduled: the job for the new time will dial
        time.sleep(early)  # queued a moment ahead of its time: never dial early
        now = callback.scheduled_for
    if number is None:
        cancel(store, callback_id, "the support number was removed")
        return "canceled"
    if not allowed(now, number, callback.callee_zone):
        later = next_allowed(now, number, callback.callee_zone)
        if later is None:
            return _end_without_window(callback_id)
        return _move(callback, later, now, "outside the calling window at dial time")

    try:
        public_base()  # before the claim: a job that cannot give Twilio absolute URLs must not use up an attempt
    except NoPublicURL as exc:
        log.error("callback %s attempt %s not dialled, it stays scheduled: %s", callback_id, attempt, exc)
        return "no public URL"
    agent = _agent_for(callback, number) if callback.mode == Mode.agent_first else None
    if callback.mode == Mode.agent_first and agent is None:
        later = lifecycle.retry_at(callback, number, len(callback.attempts), 1.0, now)
        return _end_without_window(callback_id) if later is None else _move(callback, later, now, "no agent available")
    target = callback.phone if agent is None else (agent.phone or f"client:{agent.client_identity}")
    # Durable before the call: a Redis restarted from its append-only file still knows this attempt was taken.
    claimed = store.update(callback_id, functools.partial(lifecycle.claim, attempt=attempt, number=number,
                                                          to=target, agent_id=agent.id if agent else None, now=now),
                           durable=True)
    if claimed.state != State.dialing or claimed.attempts[-1].claimed_at != now:
        return "claimed elsewhere"
    # The rate slot comes last, right before the request: whatever lay between a slot and Twilio (a durable claim
    # waits up to a second for Redis's disk) would bunch calls at Twilio past the limit. Each worker holds one slot
    # at a time, so a claimed attempt still goes within a few slots (plus the REST timeout).
    _wait_for_rate_slot(current_app.config.get("DIAL_RATE_LIMIT", 1))
    return _place(claimed, attempt, number, now)


# Where Twilio reaches a callback call's webhooks; voice/callback_calls.py serves them under this prefix.
WEBHOOKS = "/voice/callback"


def webhook_url(endpoint: str, callback_id: str, attempt: int, claim: str, **extra: str) -> str:
    """The absolute URL of a callback call's webhook, naming the attempt and its claim."""
    params = {"cb": callback_id, "attempt": str(attempt), "claim": claim, **extra}
    return absolute_url(f"{WEBHOOKS}/{endpoint}?" + "&".join(f"{k}={v}" for k, v in params.items()))


def _place(callback: Callback, attempt: int, number: Any, now: datetime) -> str:
    client = TWILIO.get()
    claimed = callback.attempts[-1]
    url = functools.partial(webhook_url, callback_id=callback.id, attempt=attempt,
                            claim=lifecycle.claim_token(claimed))
    if callback.mode == Mode.agent_first:
        # The agent's phone or browser rings first; the customer is dialled from the agent's leg.
        call_args = {"to": claimed.to, "url": url("agent", agent=claimed.agent_id or ""),
                     "status_callback": url("status", leg="agent")}
    else:
        call_args = {"to": callback.phone, "url": url("answer"), "status_callback": url("status"),
                     "machine_detection": "DetectMessageEnd"}
    late = (datetime.now(UTC) - callback.scheduled_for).total_seconds()
    DIAL_LATENESS.observe(max(0.0, late))
    try:
        call = client.calls.create(from_=number.caller_id or number.number, status_callback_event=STATUS_EVENTS,
                                   timeout=30, **call_args)
    except TwilioRestException as exc:
        outcome = Outcome.invalid if exc.code in INVALID_NUMBER_CODES else Outcome.failed
        log.warning("callback %s attempt %s: Twilio refused the call (%s)", callback.id, attempt, exc.code)
        finish_attempt(callback.id, attempt, outcome, now)
        return outcome
    except requests.Timeout as exc:
        # Twilio may still be placing it: the claim stays until the sweeper adopts the call or, much later, redials.
        log.warning("callback %s attempt %s: Twilio did not answer in time (%s)", callback.id, attempt,
                    type(exc).__name__)
        return TWILIO_SLOW
    except requests.RequestException as exc:
        # The connection failed: nothing more can reach Twilio, so the sweeper may adopt or redial at once.
        log.warning("callback %s attempt %s: Twilio could not be reached (%s)", callback.id, attempt,
                    type(exc).__name__)
        return TWILIO_UNREACHABLE
    CALLBACKS.get().remember_call(call.sid, callback.id, attempt)
    # Unchanged when reconciled meanwhile: the remembered call is found by its owner record.
    CALLBACKS.get().update(callback.id, functools.partial(lifecycle.record_call, attempt=attempt,
                                                           claimed_at=claimed.claimed_at, call_sid=call.sid))
    REPORTS.get().count_lateness(number, late, once=(callback.id, f"attempt {attempt}"))
    return f"dialled {call.sid}"


def _agent_for(callback: Callback, number: Any) -> Any:
    """The callback's agent when they are available, else who would take an inbound call on the thread."""
    agents = AGENTS.get()
    if callback.agent_id:
        chosen = agents.get(callback.agent_id)
        if chosen is not None and chosen.takes_calls:
            return chosen
    thread = THREADS.get().get(callback.thread_id, newest=20)
    return choose_agent(number, thread, agents)


def reconcile(callback: Callback, attempt: int, now: datetime) -> str:
    """An attempt claimed but with no call recorded (a worker died): adopt the call if Twilio has one, else redial."""
    claimed = callback.attempts[attempt - 1]
    if claimed.call_sid:
        return "already placed"
    client = TWILIO.get()
    since = claimed.claimed_at - timedelta(seconds=5)
    mine = (callback.id, attempt)
    # Twilio filters StartTime by date (YYYY-MM-DD, UTC): list that day on, then keep what started since the claim.
    # The claim names whom it rings first (the customer, or the agent): a call there since the claim, that no
    # other attempt owns, is this attempt's call.
    listed = client.calls.list(to=claimed.to or callback.phone, start_time_after=since.date().isoformat(), limit=50)
    calls = [c for c in listed if _started_since(c, since) and c.parent_call_sid is None
             and CALLBACKS.get().call_owner(c.sid) in (None, mine)]
    calls.sort(key=lambda c: c.date_created or now)
    same_claim = {"attempt": attempt, "claimed_at": claimed.claimed_at}
    if calls:
        adopted = calls[0]
        CALLBACKS.get().remember_call(adopted.sid, callback.id, attempt)
        CALLBACKS.get().update(callback.id, functools.partial(lifecycle.adopt, **same_claim, call_sid=adopted.sid))
        return f"adopted {adopted.sid}"
    again = CALLBACKS.get().update(callback.id, functools.partial(lifecycle.redial, **same_claim))
    if again.state == State.scheduled and len(again.attempts) == attempt - 1:
        enqueue_dial(QUEUE.get(), again, replace=True)  # its first job is the dead worker's
        return "redial"
    return "changed meanwhile"


def _started_since(call: Any, since: datetime) -> bool:
    """Whether Twilio's call started (or, not started yet, was created) at or after since."""
    started = call.start_time or call.date_created
    return started is None or started >= since.replace(microsecond=0)


def _end_without_window(callback_id: str) -> str:
    CALLBACKS.get().update(callback_id, lifecycle.exhaust, announce=lambda ended: [news(
        ended, EventType.callback_exhausted, "We couldn't find a time to call you. Reply here and we'll pick it up.")])
    return "no window"


def _move(seen: Callback, when: datetime, now: datetime, reason: str) -> str:
    # Unchanged when rescheduled meanwhile: the newer time stands.
    moved = CALLBACKS.get().update(seen.id, functools.partial(lifecycle.postpone, due=seen.scheduled_for,
                                                               when=when, now=now))
    schedule(QUEUE.get(), moved, now)
    log.info("callback %s moved: %s", seen.id, reason)
    return "moved"


def finish_attempt(callback_id: str, attempt: int, outcome: Outcome, now: datetime,
                   call: dict[str, Any] | None = None) -> Callback:
    """Close an attempt with its outcome; a failed one is retried by the number's policy or the callback ends.

    call: what the platform hears of a completed call (call_sid, duration...), told with the close, once.
    """
    number = NUMBERS.get().get(CALLBACKS.get().get(callback_id).number)
    closed = CALLBACKS.get().update(callback_id, functools.partial(
        lifecycle.close_attempt, attempt=attempt, outcome=outcome, number=number,
        jitter=random.uniform(*lifecycle.JITTER), now=now),
        announce=functools.partial(_closing_news, attempt=attempt, outcome=outcome, call=call or {}))
    if closed.state == State.scheduled and len(closed.attempts) == attempt:
        schedule(QUEUE.get(), closed, now)
    return closed


def _closing_news(closed: Callback, *, attempt: int, outcome: Outcome, call: dict[str, Any]) -> list[Event]:
    """What closing the attempt tells the thread: the call completed, another attempt is coming, or the end."""
    if outcome == Outcome.completed:
        return [news(closed, EventType.call_completed, "Thanks for talking with us.", attempt=attempt, **call)]
    if closed.state == State.scheduled and len(closed.attempts) == attempt:
        return [news(closed, EventType.call_attempt_failed, f"We tried to call you and couldn't reach you. We'll "
                     f"try again {closed.customer_local_time}. Reply here to pick another time.", outcome=outcome,
                     attempt=attempt)]
    if closed.state == State.exhausted and len(closed.attempts) == attempt:
        return [news(closed, EventType.callback_exhausted,
                     "We couldn't reach you by phone. Reply here and we'll pick it up.", attempts=attempt)]
    return []
