"""The callback lifecycle on its own: each transition as a table, and the rules that hold whatever happens."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callbacks import lifecycle
from callbacks.outcomes import RETRIED, AnsweredBy, Outcome
from callbacks.schemas import LIVE, Adjusted, Attempt, Callback, Mode, State
from callbacks.store import Unchanged
from callbacks.windows import allowed
from directory.models import Number, NumberConfig

NOON = datetime(2026, 3, 4, 17, 0, tzinfo=UTC)  # a Wednesday, noon in New York
FINAL = [s for s in State if s not in LIVE]
WEEKDAYS_9_17 = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
ZONES = ["America/New_York", "America/Los_Angeles", "Europe/London", "Asia/Kolkata", "Australia/Sydney"]


def number(**changes: Any) -> Number:
    config = {"label": "US", "brand": "Acme", "time_zone": "America/New_York", **changes}
    return Number(**NumberConfig.model_validate(config).model_dump(), number="+14155550100",
                  updated_at=datetime(2026, 1, 1, tzinfo=UTC))


def callback(state: State = State.scheduled, attempts: int = 0, **changes: Any) -> Callback:
    """A callback due at NOON with `attempts` attempts, the earlier ones ended busy, the last open if its call is."""
    made = [Attempt(number=i + 1, claimed_at=NOON - timedelta(hours=attempts - i), to="+14155550123",
                    call_sid=f"CA{i + 1}", outcome=Outcome.busy) for i in range(attempts)]
    if made and state in (State.dialing, State.in_call, State.completed):
        made[-1].outcome = None
    fields = {"id": "cb_1", "thread_id": "t-1", "state": state, "mode": Mode.customer_first,
              "number": "+14155550100", "phone": "+14155550123", "callee_zone": "America/New_York",
              "scheduled_for": NOON, "customer_local_time": "today at 12 PM", "attempts": made,
              "created_at": NOON - timedelta(days=1), "updated_at": NOON - timedelta(days=1), **changes}
    return Callback(**fields)


def claimed(attempt: int = 1, **changes: Any) -> Callback:
    """Dialing: attempt claimed at NOON, no call recorded yet."""
    current = callback(State.dialing, attempt, **changes)
    current.attempts[-1].claimed_at, current.attempts[-1].call_sid = NOON, None
    return current


def close(outcome: Outcome, *, attempt: int = 1, state: State = State.dialing, jitter: float = 1.0,
          **number_changes: Any) -> Callback:
    return lifecycle.close_attempt(callback(state, attempt), attempt=attempt, outcome=outcome,
                                   number=number(**number_changes), jitter=jitter, now=NOON)


# --- each transition ----------------------------------------------------------------------------------------------

def test_a_due_callback_is_claimed_once():
    taken = lifecycle.claim(callback(), attempt=1, number=number(), to="+14155550123", agent_id=None, now=NOON)
    assert taken.state == State.dialing and taken.attempts == [Attempt(number=1, claimed_at=NOON, to="+14155550123")]
    with pytest.raises(Unchanged):
        lifecycle.claim(taken, attempt=1, number=number(), to="+14155550123", agent_id=None, now=NOON)


@pytest.mark.parametrize(("current", "attempt", "now"), [
    (callback(), 2, NOON),  # not the next attempt
    (callback(State.canceled), 1, NOON),
    (callback(), 1, NOON - timedelta(seconds=2)),  # early by more than the tolerance
    (callback(), 1, NOON + timedelta(hours=10)),  # 10 PM in New York: outside the calling window
])
def test_a_claim_that_does_not_apply_changes_nothing(current, attempt, now):
    with pytest.raises(Unchanged):
        lifecycle.claim(current, attempt=attempt, number=number(), to="+1", agent_id=None, now=now)


def test_a_claim_within_the_early_tolerance_is_taken():
    early = NOON - lifecycle.EARLY_TOLERANCE
    assert lifecycle.claim(callback(), attempt=1, number=number(), to="+1", agent_id="a1", now=early).state == \
        State.dialing


def test_the_placed_call_is_recorded_on_its_claim_only():
    current = claimed()
    assert lifecycle.record_call(current, attempt=1, claimed_at=NOON, call_sid="CA9").attempts[-1].call_sid == "CA9"
    with pytest.raises(Unchanged):
        lifecycle.record_call(current, attempt=1, claimed_at=NOON - timedelta(seconds=1), call_sid="CA9")


def test_a_dead_workers_claim_adopts_the_call_or_is_given_back():
    current = claimed()
    adopted = lifecycle.adopt(current, attempt=1, claimed_at=NOON, call_sid="CA7")
    assert adopted.attempts[-1].call_sid == "CA7" and adopted.state == State.dialing
    again = lifecycle.redial(current, attempt=1, claimed_at=NOON)
    assert again.state == State.scheduled and again.attempts == []
    for transition in (functools.partial(lifecycle.adopt, call_sid="CA7"), lifecycle.redial):
        with pytest.raises(Unchanged):
            transition(adopted, attempt=1, claimed_at=NOON)  # a call is recorded: nothing to reconcile
    with pytest.raises(Unchanged):  # the worker that placed it records it late: it is the same call
        lifecycle.record_call(adopted, attempt=1, claimed_at=NOON, call_sid="CA7")


@pytest.mark.parametrize(("answered_by", "state"), [(None, State.in_call), (AnsweredBy.human, State.in_call),
                                                    (AnsweredBy.unknown, State.in_call),
                                                    (AnsweredBy.machine_end_beep, State.dialing),
                                                    (AnsweredBy.fax, State.dialing)])
def test_an_answered_call_remembers_by_whom(answered_by, state):
    picked = lifecycle.answered(claimed(), attempt=1, answered_by=answered_by)
    assert (picked.state, picked.attempts[-1].answered_by) == (state, answered_by)


@pytest.mark.parametrize(("transition", "before", "after"), [
    (lifecycle.connected, State.in_call, State.completed),
    (lifecycle.dialling_customer, State.dialing, State.in_call),
])
def test_state_steps(transition, before, after):
    assert transition(callback(before, 1)).state == after
    with pytest.raises(Unchanged):
        transition(callback(after, 1))


def test_a_later_slot_ends_the_attempt_rescheduled():
    later = NOON + timedelta(days=1)
    moved = lifecycle.choose_later(callback(State.in_call, 1), attempt=1, when=later, now=NOON)
    assert (moved.state, moved.scheduled_for, moved.customer_local_time) == (State.scheduled, later,
                                                                             "tomorrow at 12 PM")
    assert (moved.attempts[-1].outcome, moved.attempts[-1].ended_at) == (Outcome.rescheduled, NOON)


@pytest.mark.parametrize("state", list(State))
def test_cancel_ends_only_a_live_callback(state):
    if state in LIVE:
        assert lifecycle.cancel(callback(state, 1), reason="no").reason == "no"
    else:
        with pytest.raises(Unchanged):
            lifecycle.cancel(callback(state, 1), reason="no")


def test_moves_of_a_waiting_callback():
    later = NOON + timedelta(days=1)
    asked = Adjusted(reason="outside", requested=NOON)
    assert lifecycle.reschedule(callback(), when=later, adjusted=asked, now=NOON).adjusted == asked
    assert lifecycle.postpone(callback(), due=NOON, when=later, now=NOON).scheduled_for == later
    with pytest.raises(Unchanged):  # rescheduled meanwhile: the newer time stands
        lifecycle.postpone(callback(), due=NOON - timedelta(minutes=1), when=later, now=NOON)
    mine = lifecycle.call_now(callback(), agent_id="a1", now=NOON + timedelta(minutes=5))
    assert (mine.mode, mine.agent_id, mine.scheduled_for) == (Mode.agent_first, "a1", NOON + timedelta(minutes=5))
    assert lifecycle.exhaust(callback()).reason == lifecycle.NO_WINDOW


@pytest.mark.parametrize(("outcome", "attempt", "state", "reason"), [
    (Outcome.completed, 1, State.completed, None),
    (Outcome.invalid, 1, State.failed, "the number can't be called"),
    (Outcome.busy, 1, State.scheduled, None),
    (Outcome.machine, 2, State.scheduled, None),
    (Outcome.no_answer, 3, State.exhausted, "no answer after 3 attempts"),
])
def test_closing_an_attempt(outcome, attempt, state, reason):
    closed = close(outcome, attempt=attempt)
    assert (closed.state, closed.reason, closed.attempts[-1].outcome) == (state, reason, outcome)


def test_a_retry_waits_the_numbers_minutes_with_the_jitter():
    assert close(Outcome.busy, jitter=1.1).scheduled_for == NOON + timedelta(minutes=11)
    assert close(Outcome.busy, attempt=2, jitter=0.9).scheduled_for == NOON + timedelta(minutes=27)
    assert close(Outcome.busy, attempt=2, retry_minutes=[5]).scheduled_for == NOON + timedelta(minutes=5)


def test_a_retry_with_no_window_left_exhausts():
    closed = close(Outcome.busy, holidays=[(NOON + timedelta(days=d)).date() for d in range(60)],
                   business_hours=WEEKDAYS_9_17)
    assert (closed.state, closed.reason) == (State.exhausted, "no calling window left")


def test_an_attempt_the_call_already_decided_only_gets_its_outcome():
    closed = close(Outcome.completed, state=State.completed)
    assert closed.state == State.completed and closed.attempts[-1].outcome == Outcome.completed
    with pytest.raises(Unchanged):  # and only once
        lifecycle.close_attempt(closed, attempt=1, outcome=Outcome.busy, number=number(), jitter=1.0, now=NOON)


# --- what holds whatever happens ----------------------------------------------------------------------------------

def _transitions(attempt: int, claimed_at: datetime, now: datetime, jitter: float) -> list[Callable[..., Callback]]:
    """Every transition with one set of facts."""
    when, n = now + timedelta(days=1), number()
    return [
        functools.partial(lifecycle.claim, attempt=attempt, number=n, to="+1", agent_id=None, now=now),
        functools.partial(lifecycle.record_call, attempt=attempt, claimed_at=claimed_at, call_sid="CAx"),
        functools.partial(lifecycle.adopt, attempt=attempt, claimed_at=claimed_at, call_sid="CAx"),
        functools.partial(lifecycle.redial, attempt=attempt, claimed_at=claimed_at),
        functools.partial(lifecycle.answered, attempt=attempt, answered_by=AnsweredBy.human),
        lifecycle.dialling_customer, lifecycle.connected,
        functools.partial(lifecycle.choose_later, attempt=attempt, when=when, now=now),
        functools.partial(lifecycle.cancel, reason="x"),
        functools.partial(lifecycle.reschedule, when=when, adjusted=None, now=now),
        functools.partial(lifecycle.postpone, due=NOON, when=when, now=now),
        functools.partial(lifecycle.call_now, agent_id="a1", now=now),
        lifecycle.exhaust,
        *[functools.partial(lifecycle.close_attempt, attempt=attempt, outcome=outcome, number=n, jitter=jitter,
                            now=now) for outcome in Outcome],
    ]


def _apply(transition: Callable[[Callback], Callback], current: Callback) -> Callback:
    try:
        return transition(current)
    except Unchanged:
        return current


@settings(max_examples=200, deadline=None)
@given(state=st.sampled_from(FINAL), attempts=st.integers(0, 4), attempt=st.integers(0, 5),
       offset=st.integers(-3, 3), hours=st.integers(-48, 48), jitter=st.floats(*lifecycle.JITTER), data=st.data())
def test_no_transition_takes_a_final_callback_anywhere(state, attempts, attempt, offset, hours, jitter, data):
    current = callback(state, attempts)
    open_last = data.draw(st.booleans())  # the call of the last attempt may still be ending
    if attempts and open_last:
        current.attempts[-1].outcome = current.attempts[-1].call_sid = None
    before = current.model_copy(deep=True)
    now = NOON + timedelta(hours=hours)
    for transition in _transitions(attempt, NOON + timedelta(hours=offset), now, jitter):
        after = _apply(transition, current)
        assert current == before  # pure: the input is never changed
        # A final callback stays where it is; only its last call's bookkeeping may still be filled in, once.
        assert after.model_dump(exclude={"attempts"}) == before.model_dump(exclude={"attempts"})
        assert len(after.attempts) == len(before.attempts)
        for old, new in zip(before.attempts, after.attempts, strict=True):
            for field, value in old.model_dump().items():
                assert value is None or getattr(new, field) == value


@settings(max_examples=100, deadline=None)
@given(max_attempts=st.integers(1, 6), retry_minutes=st.lists(st.integers(1, 1440), min_size=1, max_size=4),
       outcomes=st.lists(st.sampled_from(list(Outcome)), min_size=1, max_size=12),
       jitters=st.lists(st.floats(*lifecycle.JITTER), min_size=12, max_size=12))
def test_attempts_never_exceed_max_attempts(max_attempts, retry_minutes, outcomes, jitters):
    n = number(max_attempts=max_attempts, retry_minutes=retry_minutes)
    current = callback()
    for outcome, jitter in zip(outcomes, jitters, strict=False):
        if current.state != State.scheduled:
            break
        attempt, now = len(current.attempts) + 1, current.scheduled_for
        current = lifecycle.claim(current, attempt=attempt, number=n, to="+1", agent_id=None, now=now)
        if outcome == Outcome.rescheduled:  # the customer picking a time is the callback's own choice: not a retry
            outcome = Outcome.busy
        current = lifecycle.close_attempt(current, attempt=attempt, outcome=outcome, number=n, jitter=jitter,
                                          now=now + timedelta(seconds=40))
        assert len(current.attempts) <= max_attempts
    assert current.state != State.scheduled or len(current.attempts) < max_attempts


@settings(max_examples=150, deadline=None)
@given(zone=st.sampled_from(ZONES), office=st.sampled_from(ZONES), hours=st.booleans(),
       start=st.integers(0, 19), length=st.integers(1, 4), minutes=st.integers(0, 24 * 60 * 30),
       retry=st.integers(1, 1440), jitter=st.floats(*lifecycle.JITTER), outcome=st.sampled_from(sorted(RETRIED)))
def test_no_retry_is_scheduled_outside_the_window(zone, office, hours, start, length, minutes, retry, jitter, outcome):
    window = {"start": f"{start:02d}:00", "end": f"{start + length:02d}:00"}
    n = number(time_zone=office, calling_window=window, business_hours=WEEKDAYS_9_17 if hours else None,
               retry_minutes=[retry])
    now = NOON + timedelta(minutes=minutes)
    current = callback(State.dialing, 1, callee_zone=zone)
    closed = lifecycle.close_attempt(current, attempt=1, outcome=outcome, number=n, jitter=jitter, now=now)
    if closed.state == State.scheduled:
        assert allowed(closed.scheduled_for, n, zone)
        assert closed.scheduled_for >= now + timedelta(minutes=retry * jitter)
    else:
        assert (closed.state, closed.reason) == (State.exhausted, "no calling window left")
    if not allowed(now, n, zone):
        with pytest.raises(Unchanged):  # and no claim outside it either
            lifecycle.claim(callback(scheduled_for=now, callee_zone=zone), attempt=1, number=n, to="+1",
                            agent_id=None, now=now)


@settings(max_examples=150, deadline=None)
@given(attempts=st.integers(1, 4), state=st.sampled_from(list(LIVE)), stale=st.integers(1, 4),
       seconds=st.integers(-3600, -1), jitter=st.floats(*lifecycle.JITTER))
def test_an_old_claim_or_attempt_changes_nothing(attempts, state, stale, seconds, jitter):
    current = callback(state, attempts)
    last = current.attempts[-1]
    old_claim = last.claimed_at + timedelta(seconds=seconds)
    if state == State.dialing:
        last.call_sid = None  # the strongest case: the current claim could be reconciled or recorded
    for transition in (functools.partial(lifecycle.record_call, attempt=attempts, claimed_at=old_claim,
                                         call_sid="CAold"),
                       functools.partial(lifecycle.adopt, attempt=attempts, claimed_at=old_claim, call_sid="CAold"),
                       functools.partial(lifecycle.redial, attempt=attempts, claimed_at=old_claim)):
        with pytest.raises(Unchanged):
            transition(current)
    earlier = min(stale, attempts - 1)
    if earlier < 1:
        return
    # An earlier attempt's call: it was closed already, and it is not the attempt in progress.
    for transition in (functools.partial(lifecycle.answered, attempt=earlier, answered_by=AnsweredBy.human),
                       functools.partial(lifecycle.choose_later, attempt=earlier, when=NOON, now=NOON),
                       *[functools.partial(lifecycle.close_attempt, attempt=earlier, outcome=outcome, number=number(),
                                           jitter=jitter, now=NOON) for outcome in Outcome],
                       functools.partial(lifecycle.record_call, attempt=earlier, claimed_at=last.claimed_at,
                                         call_sid="CAold")):
        with pytest.raises(Unchanged):
            transition(current)
