"""Recovery from what dead workers and lost webhooks leave: requeue lost dials, reconcile claims, close calls."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import requests
from flask import current_app
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from twilio.base.exceptions import TwilioRestException

from callbacks.dialer import TWILIO_UNREACHABLE, claimed_job_id, dial_job_id, enqueue_dial, finish_attempt, reconcile
from callbacks.outcomes import FINAL_STATUSES, CallFacts, CallStatus, classify
from callbacks.schemas import Attempt, Callback, State
from callbacks.store import CALLBACKS
from context.events import OUTBOX
from core.extensions import QUEUE, TWILIO
from core.liveness import job_in_hand

log = logging.getLogger(__name__)

# A claim with no call whose worker stopped beating is reconciled once this old (s): by then a call that worker asked
# Twilio for has been created, so it is found and adopted rather than placed twice.
DEAD_WORKER_CLAIM_AGE = 5.0


def sweep(now: datetime) -> dict[str, int]:
    """Find what a killed worker may have left as of now: overdue callbacks get their dial queued again, attempts
    claimed with no call recorded are reconciled. Safe to run anywhere, any number of times: claims are atomic."""
    config = current_app.config
    store, queue = CALLBACKS.get(), QUEUE.get()
    requeued = reconciled = 0
    grace = config["SWEEP_GRACE_SECONDS"]
    for callback_id in store.overdue((now - timedelta(seconds=grace)).timestamp()):
        callback = store.get(callback_id)
        if callback.state == State.scheduled:
            if _dial_pending(queue, callback, now):
                continue  # late because the queue is long, not lost
            enqueue_dial(queue, callback, replace=True)
            requeued += 1
    unreachable: list[str] = []
    for callback_id, looked_at in store.stuck(now.timestamp()):  # each attempt under way, whatever its age
        callback = store.get(callback_id)
        if callback.state not in (State.dialing, State.in_call) or not callback.attempts:
            continue
        last = callback.attempts[-1]
        try:
            if last.call_sid is None and callback.state == State.dialing and _claim_abandoned(queue, callback, now):
                log.info("callback %s: %s", callback_id, reconcile(callback, last.number, now))
                reconciled += 1
            elif last.call_sid and now.timestamp() - looked_at >= config["CALL_CHECK_SECONDS"]:
                # Since the claim, or the last look: a status callback lost (the web down, say) ends it here.
                reconciled += _check_call(callback, last, now)
        except (TwilioRestException, requests.RequestException) as exc:
            unreachable.append(f"{callback_id} ({type(exc).__name__})")  # asked again at the next sweep
    if unreachable:
        log.warning("Twilio could not be asked about %d callback(s), next sweep tries again: %s", len(unreachable),
                    ", ".join(unreachable[:5]))
    # Events written with their change whose delivery job a dying process never queued (or lost) are sent too.
    return {"requeued": requeued, "reconciled": reconciled, "redelivered": OUTBOX.get().redeliver(now)}


def _dial_pending(queue: Queue, callback: Callback, now: datetime) -> bool:
    """Whether the callback's dial job is still waiting, or started so recently that its worker may be at work."""
    try:
        job = Job.fetch(dial_job_id(callback), connection=queue.connection)
    except NoSuchJobError:
        return False
    return job_in_hand(queue, job) and _recent(job, now)


def _recent(job: Job, now: datetime) -> bool:
    """Whether a job that started (if it did) started recently enough to still be at work."""
    if job.get_status(refresh=False) != JobStatus.STARTED:
        return True
    started = job.started_at.timestamp() if job.started_at else 0
    return now.timestamp() - started < current_app.config["RECONCILE_AFTER_SECONDS"]


def _claim_abandoned(queue: Queue, callback: Callback, now: datetime) -> bool:
    """Whether a claim with no call yet was left by a dead worker: its job's worker stopped beating (a few seconds
    on, so a call the dead worker asked for has reached Twilio and is adopted), or it is older than any dial takes."""
    age = (now - callback.attempts[-1].claimed_at).total_seconds()
    if age >= current_app.config["RECONCILE_AFTER_SECONDS"]:
        return True
    try:
        job = Job.fetch(claimed_job_id(callback), connection=queue.connection)
    except NoSuchJobError:
        return False  # queued by an older version or gone: the age rule above decides
    status = job.get_status(refresh=False)
    if status == JobStatus.FINISHED:
        # Its call request ended: refused or cut, nothing more can reach Twilio (adopt or redial now, so a call due
        # during an outage goes as soon as Twilio is back); unanswered, Twilio may still place it (the age rule).
        return job.return_value() == TWILIO_UNREACHABLE
    if age < DEAD_WORKER_CLAIM_AGE:
        return False
    return status != JobStatus.STARTED or not (job_in_hand(queue, job) and _recent(job, now))


def _check_call(callback: Callback, attempt: Attempt, now: datetime) -> int:
    """A call whose end we never heard of (a lost status callback): ask Twilio, and close the attempt if it ended."""
    client = TWILIO.get()
    call = client.calls(attempt.call_sid).fetch()
    if call.status not in FINAL_STATUSES:
        CALLBACKS.get().check_again_after(callback.id, now.timestamp())
        return 0
    # The Calls resource carries AnsweredBy; the answer request may have told us already.
    facts = CallFacts(call.status, answered_by=call.answered_by or attempt.answered_by)
    outcome = classify(facts, callback.mode, callback.state)
    if outcome is None:  # agent first, the agent took it: the customer's leg (a child of the agent's) decides
        children = client.calls.list(parent_call_sid=call.sid, limit=1)
        status = children[0].status if children else CallStatus.failed
        outcome = classify(CallFacts(status, leg="customer"), callback.mode, callback.state)
    finish_attempt(callback.id, attempt.number, outcome, now, call={"call_sid": call.sid, "duration": call.duration})
    return 1
