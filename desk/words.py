"""The desk's words: times in a zone, durations, and every code a call, a callback or a thread carries, as an
agent reads them. Pure functions, no Flask: the Jinja filters (desk/wording.py) and the briefing call these."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import phonenumbers

from callbacks.outcomes import FINAL_STATUSES
from callbacks.schemas import Callback, State
from context.schemas import Message
from voice.calls import CallRecord, Step

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

CALL_STATUS = {None: "starting", "queued": "waiting to dial", "initiated": "dialling", "ringing": "ringing",
               "in-progress": "on the phone", "completed": "ended", "busy": "busy", "failed": "failed",
               "no-answer": "no answer", "canceled": "canceled"}
CALLBACK_STATE = {State.scheduled: "scheduled", State.dialing: "dialling now", State.in_call: "on the phone now",
                  State.completed: "done", State.canceled: "canceled", State.exhausted: "gave up: nobody answered",
                  State.failed: "can't be called"}
CALLBACK_MODE = {"customer_first": "calls the customer first", "agent_first": "rings the agent first"}
OUTCOME = {"completed": "talked", "no-choice": "answered, chose nothing", "machine": "reached voicemail",
           "busy": "busy", "no-answer": "no answer", "failed": "the call failed", "canceled": "canceled",
           "invalid": "the number can't be called", "agent-declined": "the agent declined",
           "agent-unavailable": "the agent didn't answer", "no-agent": "no agent was free",
           "lost": "the call was lost", "rescheduled": "picked a later time"}
DISPOSITION = {"resolved": "resolved", "follow-up": "follow-up needed", "no-answer": "no answer",
               "wrong-number": "wrong number", "other": "other"}
AGENT_STATUS = {"available": "Available", "away": "Away", "offline": "Offline"}
ROLE = {"agent": "Agent", "admin": "Admin"}
LOG_LEVEL = {"debug": "debug", "info": "info", "warning": "warning", "error": "error", "fatal": "fatal error"}
DEVICE = {"platform": "Platform", "os_version": "OS version", "app_version": "App version", "model": "Model"}
# A callee or the line answering without a person: how a callback's call ended when nobody talked.
_UNANSWERED = {"busy": "busy", "no-answer": "no answer", "failed": "the call failed", "canceled": "canceled"}


def zone_name(zone: str) -> str:
    """A time zone as people name it: America/New_York → New York, UTC → UTC."""
    return zone.rsplit("/", 1)[-1].replace("_", " ")


def clock(moment: datetime, zone: str) -> str:
    """The time of day in zone: 3:02 PM."""
    local = _local(moment, zone)
    return f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"


def day_and_time(moment: datetime, zone: str, now: datetime) -> str:
    """Today 3:02 PM, Yesterday 3:02 PM, Tomorrow 3:02 PM, Mon 2 Dec 3:02 PM (another year: Mon 2 Dec 2025 3:02 PM)."""
    local, today = _local(moment, zone), _local(now, zone).date()
    days = (local.date() - today).days
    named = {0: "Today", -1: "Yesterday", 1: "Tomorrow"}
    if days in named:
        day = named[days]
    else:
        year = f" {local.year}" if local.year != today.year else ""
        day = f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]}{year}"
    return f"{day} {clock(moment, zone)}"


def their_time(now: datetime, zone: str) -> str:
    """Someone's local time now, with where: 7:02 AM Tue (Los Angeles)."""
    return f"{clock(now, zone)} {_DAYS[_local(now, zone).weekday()]} ({zone_name(zone)})"


def duration(seconds: float | None) -> str:
    """35 s, 4 min, 1 h 5 min: the way a call's length is said."""
    total = max(0, round(seconds or 0))
    if total < 60:
        return f"{total} s"
    minutes = round(total / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


NOTHING = "none"  # a figure of a period with nothing to measure


def short_day(day: date) -> str:
    """A date as a chart's or a table's row names it: Tue 1 Dec."""
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


def share(value: float | None) -> str:
    """A fraction as a percentage, or none when there was nothing to divide: 62%."""
    return NOTHING if value is None else f"{round(value * 100)}%"


def lateness(seconds: float | None) -> str:
    """How late callbacks were dialled: 0.4 s, 12 s, 3 min, more than an hour; none when none was."""
    if seconds is None:
        return NOTHING
    if math.isinf(seconds):
        return "more than an hour"
    return f"{seconds:.1f} s" if seconds < 10 else duration(seconds)


def rating(value: float | None) -> str:
    """An average score: 4.2 out of 5; none when nobody rated."""
    return NOTHING if value is None else f"{value:.1f} out of 5"


def minutes_late(minutes: int) -> str:
    """How late a callback is: on time, 1 min late, 3 h 5 min late."""
    return "on time" if minutes <= 0 else f"{duration(minutes * 60)} late"


def count(n: int, noun: str) -> str:
    """1 attempt, 2 attempts."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def callback_state(value: str) -> str:
    return CALLBACK_STATE.get(value, _words(value))


def callback_mode(value: str) -> str:
    return CALLBACK_MODE.get(value, _words(value))


def outcome(value: str | None) -> str:
    return OUTCOME.get(value or "", _words(value or ""))


def label(key: str) -> str:
    """A field's name as a heading: order_id → Order id, os_version → OS version."""
    if key in DEVICE:
        return DEVICE[key]
    spaced = _words(key)
    return spaced[:1].upper() + spaced[1:]


def phone(number: str | None) -> str:
    """An E.164 number written to be read: +1 415-555-0123; a browser phone's address in words (anything else as it
    is)."""
    if not number:
        return ""
    if number.startswith("client:"):
        return "a browser phone"
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def first_name(name: str | None) -> str:
    return (name or "").split(" ", 1)[0]


def author(message: Message) -> str:
    """Who wrote a message: Jane (customer), Sam (agent), Bot, Voicemail (bot)."""
    role = message.author.value
    return f"{message.name} ({role})" if message.name else role.capitalize()


def pressed(digits: str) -> str:
    return f"pressed {digits}" if digits else "pressed nothing"


def step(item: Step, names: Mapping[str, str]) -> str | None:
    """One step of a call in words; None for a step the story leaves out (statuses, recordings)."""
    detail, kind = item.detail, item.kind
    who = _agent(detail.get("agent_id"), names)
    said = {
        "closed": "called while closed", "caller_id_not_verified": "caller ID not verified",
        "no_caller_id_match": "number not recognised", "matched_caller_id": None,
        "pressed": pressed(str(detail.get("value") or "")), "said": f"said “{detail.get('value') or ''}”",
        "entered_code": "gave a call code" if detail.get("valid") else "gave a wrong call code",
        "no_agent_available": "nobody was free", "dialling_agent": f"rang {who}",
        "agent_answered": f"{who} answered", "agent_accepted": None, "agent_declined": f"{who} declined",
        "dial_ended": _dial_ended(detail, who),
        "voicemail": f"left a voicemail ({duration(_number(detail.get('duration')))})",
        "callback_answered": None, "status": _UNANSWERED.get(str(detail.get("status"))), "recorded": None,
        "disposition": f"{who} marked it {DISPOSITION.get(str(detail.get('value')), _words(str(detail.get('value'))))}",
        "feedback": f"rated the call {detail.get('score')} out of 5", "feedback_comment": "left a comment",
    }
    return said.get(kind, _words(kind))


def story(call: CallRecord, names: Mapping[str, str]) -> str:
    """What happened on a call, in order: called in, pressed 1, talked 4 min with Sam."""
    parts = ["called in" if call.direction == "inbound" else "called back"]
    for item in call.steps:
        words = step(item, names)
        if words and words != parts[-1]:
            parts.append(words)
    parts = [p for i, p in enumerate(parts) if not _superseded(p, parts[i + 1:])]
    if call.ended_at is None and call.status not in FINAL_STATUSES:
        parts.append("still on the phone")
    elif not any(p.startswith(("talked", "left a voicemail")) for p in parts) and call.duration:
        parts.append(f"lasted {duration(call.duration)}")
    return ", ".join(parts)


def reason(call: CallRecord | None, subject: str) -> str:
    """Why the customer is calling, as the IVR established it: confirmed: <subject>, chose: …, call code, no match."""
    if call is None:
        return "no call yet"
    if call.direction != "inbound":
        return f"callback: {subject}" if call.thread_id else "callback"
    kinds = [s.kind for s in call.steps]
    if any(s.kind == "entered_code" and s.detail.get("valid") for s in call.steps):
        return "call code"
    if call.thread_id is None:
        return "no match"
    matched = next((s for s in call.steps if s.kind == "matched_caller_id"), None)
    if matched and len(matched.detail.get("threads") or []) > 1:
        return f"chose: {subject}"
    if "pressed" in kinds or "said" in kinds:
        return f"confirmed: {subject}"
    return subject


def callback_line(callback: Callback, now: datetime) -> str:
    """A callback in one line: callback scheduled, their time Tomorrow 3:00 PM, calls the customer first."""
    parts = [f"callback {callback_state(callback.state)}"]
    if callback.state == State.scheduled:
        parts.append(f"their time {day_and_time(callback.scheduled_for, callback.callee_zone, now)}")
    parts.append(callback_mode(callback.mode))
    if callback.attempts:
        parts.append(count(len(callback.attempts), "attempt"))
        last = callback.attempts[-1].outcome
        if last:
            parts.append(f"last: {outcome(last)}")
    if callback.reason and callback.state == State.canceled:
        parts.append(callback.reason)
    return ", ".join(parts)


def names_of(agents: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Agent ids to the first names calls are told with."""
    return {agent_id: first_name(name) or agent_id for agent_id, name in agents}


def _superseded(part: str, later: Sequence[str]) -> bool:
    """"rang Sam" and "Sam answered" say nothing more once a later step names Sam (talked with, declined)."""
    name = part.removeprefix("rang ") if part.startswith("rang ") else part.removesuffix(" answered")
    return name != part and any(name in after for after in later)


def _dial_ended(detail: Mapping[str, object], who: str) -> str:
    status, bridged = detail.get("status"), detail.get("bridged")
    if status == "completed" and bridged != "false":
        return f"talked {duration(_number(detail.get('duration')))} with {who}"
    return f"{who} didn't take it" if status == "completed" else f"{who}: {CALL_STATUS.get(str(status), 'no answer')}"


def _agent(agent_id: object, names: Mapping[str, str]) -> str:
    return names.get(str(agent_id), "an agent") if agent_id else "an agent"


def _number(value: object) -> float:
    try:
        return float(str(value))
    except ValueError:
        return 0


def _words(code: str) -> str:
    return code.replace("_", " ").replace("-", " ")


def _local(moment: datetime, zone: str) -> datetime:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(zone))
