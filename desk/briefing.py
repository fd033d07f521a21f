"""What the popped thread tells an agent at a glance: the call it is about and its state, and the thread's earlier
calls and callbacks as one timeline. Pure: the records in, words and times out (desk/words.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from callbacks.outcomes import FINAL_STATUSES
from callbacks.schemas import Callback
from desk import words
from voice.calls import CallRecord

# A call whose end was never reported (a lost status callback) stops counting as live after this long.
STALE_AFTER = timedelta(hours=4)


@dataclass(frozen=True)
class CallState:
    """Where the call stands, as the page's call-state slot first shows it (the softphone updates it live)."""

    state: str  # none, menu, ringing, connected, ended
    text: str
    since: datetime | None = None


@dataclass(frozen=True)
class Entry:
    """One line of the timeline: when, then what happened; a call's entry carries the call (for its recording)."""

    at: datetime
    text: str
    call: CallRecord | None = None


def current_call(calls: Sequence[CallRecord], sid: str | None) -> CallRecord | None:
    """The call the page is about: the one the screen pop named when it is the thread's, else the newest."""
    named = next((c for c in calls if sid and c.sid == sid), None)
    return named or (calls[0] if calls else None)


def is_live(call: CallRecord | None, now: datetime) -> bool:
    """Whether the call is still going: no end reported, and not so old that its end was surely lost."""
    if call is None or call.ended_at is not None or call.status in FINAL_STATUSES:
        return False
    return call.started_at is None or now - call.started_at < STALE_AFTER


def call_state(call: CallRecord | None, now: datetime) -> CallState:
    """ringing (the agent's phone), connected (the agent took it), menu (the caller in the IVR), ended, none."""
    if call is None:
        return CallState("none", "No call")
    if not is_live(call, now):
        length = f" after {words.duration(call.duration)}" if call.duration else ""
        return CallState("ended", f"Call ended{length}", call.ended_at)
    kinds = [s.kind for s in call.steps]
    last_dial = max((i for i, k in enumerate(kinds) if k in ("dialling_agent", "agent_answered")), default=-1)
    if last_dial >= 0 and "dial_ended" not in kinds[last_dial:]:
        accepted = [s for s in call.steps[last_dial:] if s.kind == "agent_accepted"]
        if accepted:
            return CallState("connected", "Connected", accepted[-1].at)
        return CallState("ringing", "Ringing", call.steps[last_dial].at)
    return CallState("menu", "In the phone menu", call.started_at)


def timeline(calls: Sequence[CallRecord], callbacks: Sequence[Callback], names: Mapping[str, str],
             now: datetime) -> list[Entry]:
    """The thread's calls and callbacks, newest first, each told in a line."""
    entries = [Entry(call.started_at or now, words.story(call, names), call) for call in calls]
    entries += [Entry(callback.scheduled_for, words.callback_line(callback, now)) for callback in callbacks]
    return sorted(entries, key=lambda entry: entry.at, reverse=True)
