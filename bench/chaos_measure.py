"""The chaos bench's figures, measured from outside: calls from the carrier's record, due times from the API's
answers, states from the API at the end, events from what the platform received, webhook answers from the load."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bench.chaos_load import Load
from bench.chaos_rig import Received
from bench.common import percentile
from callbacks.lifecycle import EARLY_TOLERANCE

RETRIED = {"busy", "no_answer", "failed", "canceled", "machine", "no_choice", "lost", "no_agent",
           "agent_unavailable", "agent_declined"}  # callbacks.outcomes.RETRIED's values, as the API shows them
LIVE = {"scheduled", "dialing", "in_call"}
FINAL = {"completed", "canceled", "exhausted", "failed"}
ON_TIME = 5.0  # seconds: the lateness the issue allows, outside outages (and after each outage's end and backlog)
REDIS_GRACE = 2.0  # seconds after Redis is back during which a 503 still counts as the outage's


@dataclass
class Planned:
    """A callback the bench asked for: whom it calls, how that phone behaves, and when the API said it is due."""

    id: str
    phone: str
    number: str
    kind: str
    due: float


@dataclass
class Call:
    """A call the carrier received for a callback (its REST create), with epoch times."""

    sid: str
    started: float
    ended: float | None


@dataclass
class Window:
    """A number's calling window in the callee's zone, as minutes of the day [start, end)."""

    zone: str
    start: int
    end: int

    def allows(self, moment: float) -> bool:
        local = datetime.fromtimestamp(moment, ZoneInfo(self.zone))
        return self.start <= local.hour * 60 + local.minute < self.end


@dataclass
class Figures:
    scenario: str
    scheduled: int = 0
    states: Counter[str] = field(default_factory=Counter)
    pending: int = 0  # still scheduled, for a time still ahead (moved past a window's end): not lost
    lost: list[str] = field(default_factory=list)
    duplicate: list[str] = field(default_factory=list)
    early: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)  # first calls: start minus due
    over: list[str] = field(default_factory=list)  # first calls more than ON_TIME late, outages and backlog allowed for
    events_expected: int = 0
    events_lost: list[str] = field(default_factory=list)
    events_doubled: list[str] = field(default_factory=list)  # one change under two event ids
    events_unsigned: int = 0
    webhooks: int = 0
    webhook_5xx: int = 0  # outside Redis outages
    webhook_503_outage: int = 0
    webhook_bad_twiml: int = 0  # a 503 without TwiML, or any other answer Twilio can't act on
    webhook_unanswered: int = 0  # no HTTP answer: the web process was being restarted
    webhook_p99: float = float("nan")
    calls: int = 0
    kills: dict[str, int] = field(default_factory=dict)
    exits: dict[str, int] = field(default_factory=dict)
    outages: list[tuple[str, float, float]] = field(default_factory=list)

    def failures(self) -> list[str]:
        """What makes the bench exit non-zero: lost, duplicate, early or out-of-window calls, lost events, 5xx."""
        named = {"lost callbacks": self.lost, "duplicate calls": self.duplicate, "early calls": self.early,
                 "calls outside the window": self.outside, "lost events": self.events_lost,
                 "changes reported twice": self.events_doubled}
        found = [f"{len(v)} {k}: {', '.join(v[:5])}{' …' if len(v) > 5 else ''}" for k, v in named.items() if v]
        if self.webhook_5xx:
            found.append(f"{self.webhook_5xx} webhook 5xx outside a Redis outage")
        if self.webhook_bad_twiml:
            found.append(f"{self.webhook_bad_twiml} webhook answers Twilio can't act on")
        return found


def rate_slots(could: list[float], rate: float) -> list[float]:
    """When calls that could each first go at `could` can go under a dial limit of `rate` a second: a backlog (after
    an outage) drains one slot at a time. In the order given, which is sorted by `could`."""
    slots: list[float] = []
    for moment in could:
        slots.append(max(moment, slots[-1] + 1 / rate) if slots else moment)
    return slots


def after_outages(moment: float, placed: float, outages: list[tuple[str, float, float]]) -> float:
    """The moment a call due at `moment` and placed at `placed` could first be placed: past each outage that
    struck while it waited (one that began before it was due, or while its dial was under way)."""
    for _, began, ended in sorted(outages, key=lambda o: o[1]):
        if began <= placed and moment < ended:
            moment = max(moment, ended)
    return moment


def expected_events(record: dict[str, Any]) -> set[tuple[str, str, int | None]]:
    """The changes a callback went through, by its final record, each of which needs an event
    (callbacks/dialer.py, callbacks/api.py and voice/callback_calls.py say which)."""
    cb, attempts, state = record["id"], record["attempts"], record["state"]
    wanted: set[tuple[str, str, int | None]] = {("callback.scheduled", cb, None)}
    for attempt in attempts:
        number, outcome = attempt["number"], attempt.get("outcome")
        retried_after = number < len(attempts) or (state == "scheduled" and number == len(attempts))
        if outcome in RETRIED and retried_after:
            wanted.add(("call.attempt_failed", cb, number))
        if (attempt.get("answered_by") or "").startswith("machine_end"):
            wanted.add(("call.voicemail_left", cb, number))
    if state == "exhausted":
        wanted.add(("callback.exhausted", cb, None))
    elif state == "canceled":
        wanted.add(("callback.canceled", cb, None))
    elif state == "completed" and attempts and attempts[-1].get("outcome") == "completed":
        wanted |= {("call.connected", cb, None), ("call.completed", cb, None)}
    return wanted


def event_key(event: Received) -> tuple[str, str, int | None]:
    per_attempt = event.type in ("call.attempt_failed", "call.voicemail_left")
    return event.type, event.callback_id or "", event.attempt if per_attempt else None


def measure_calls(figures: Figures, plan: Planned, record: dict[str, Any], calls: list[Call],
                  windows: dict[str, Window], retry_gap: float) -> None:
    """Duplicates, early and out-of-window calls of one callback, and its first call's lateness."""
    attempts = record["attempts"]
    if len(calls) > len(attempts):
        figures.duplicate.append(f"{plan.id} ({len(calls)} calls, {len(attempts)} attempts)")
    tolerance = EARLY_TOLERANCE.total_seconds()
    for n, call in enumerate(calls):
        if not windows[plan.number].allows(call.started):
            figures.outside.append(f"{plan.id} call {n + 1}")
        # A retry may not start before the earlier call ended plus the number's retry wait (-10 % jitter); the
        # carrier stamps ends to the second.
        earliest = plan.due if n == 0 else (calls[n - 1].ended or calls[n - 1].started) - 1 + retry_gap * 0.9
        if call.started < earliest - tolerance:
            figures.early.append(f"{plan.id} call {n + 1} ({earliest - call.started:.2f} s early)")
    if calls:
        figures.lateness.append(calls[0].started - plan.due)


def measure_over(figures: Figures, plans: list[Planned], calls: dict[str, list[Call]], rate: float) -> None:
    """First calls placed more than ON_TIME after they could first go: past the outages that held them, and behind
    the backlog those outages left, drained at the dial limit (every call placed takes a slot)."""
    by_phone = {p.phone: p for p in plans}
    queue: list[tuple[float, float, str]] = []  # could first go, placed, the callback's id (a first call) or ""
    for phone, placed in calls.items():
        plan = by_phone.get(phone)
        for n, call in enumerate(placed):
            if plan and n == 0:
                queue.append((after_outages(plan.due, call.started, figures.outages), call.started, plan.id))
            else:  # a retry: only the slot it took counts
                queue.append((call.started, call.started, ""))
    queue.sort()
    for (_, started, callback), slot in zip(queue, rate_slots([q[0] for q in queue], rate), strict=True):
        if callback and started - slot > ON_TIME:
            figures.over.append(callback)


def measure(scenario: str, plans: list[Planned], records: dict[str, dict[str, Any] | None],
            calls: dict[str, list[Call]], events: list[Received], load: Load, windows: dict[str, Window],
            retry_gap: float, settled: float, outages: list[tuple[str, float, float]], rate: float) -> Figures:
    """Every figure of one scenario's run; settled is the epoch by which every callback should have moved on."""
    figures = Figures(scenario, scheduled=len(plans), outages=outages)
    wanted: set[tuple[str, str, int | None]] = set()
    for plan in plans:
        record = records.get(plan.id)
        if record is None:
            figures.lost.append(f"{plan.id} (gone)")
            continue
        figures.states[record["state"]] += 1
        due = datetime.fromisoformat(record["scheduled_for"]).timestamp()
        if record["state"] in LIVE and due < settled:
            placed = bool(record["attempts"] and record["attempts"][-1].get("call_sid"))
            figures.lost.append(f"{plan.id} ({record['state']}{', its call placed' if placed else ''}, "
                                f"due {due - settled:+.0f} s from the settle time)")
        elif record["state"] in LIVE:  # due after the settle time: waiting, or its call under way
            figures.pending += 1
        mine = calls.get(plan.phone, [])
        figures.calls += len(mine)
        measure_calls(figures, plan, record, mine, windows, retry_gap)
        wanted |= expected_events(record)
    measure_over(figures, plans, calls, rate)
    measure_events(figures, wanted, events)
    measure_webhooks(figures, load, outages)
    return figures


def measure_events(figures: Figures, wanted: set[tuple[str, str, int | None]], events: list[Received]) -> None:
    ids: dict[tuple[str, str, int | None], set[str]] = {}
    for event in events:
        if not event.valid:
            figures.events_unsigned += 1
            continue
        ids.setdefault(event_key(event), set()).add(event.event_id)
    figures.events_expected = len(wanted)
    figures.events_lost = sorted(f"{t} {cb}{'' if a is None else f' #{a}'}" for t, cb, a in wanted - set(ids))
    # At least once is fine (one id, delivered twice); one change under two ids would be posted twice.
    figures.events_doubled = sorted(f"{t} {cb}" for (t, cb, _), seen in ids.items() if len(seen) > 1)


def measure_webhooks(figures: Figures, load: Load, outages: list[tuple[str, float, float]]) -> None:
    redis_down = [(began, ended + REDIS_GRACE) for kind, began, ended in outages if kind == "redis"]
    figures.webhooks = load.sent
    figures.webhook_p99 = percentile(load.latencies, 0.99)
    for answer in load.odd:
        # Sent before Redis went but answered after: in flight across the kill, it is the outage's too.
        during = any(began <= answer.at + answer.seconds and answer.at <= ended for began, ended in redis_down)
        if answer.status == 0:
            figures.webhook_unanswered += 1
        elif answer.status == 503 and during:
            figures.webhook_503_outage += 1
            figures.webhook_bad_twiml += not answer.twiml
        elif answer.status >= 500:
            figures.webhook_5xx += 1
        elif not answer.twiml or answer.status >= 300:
            figures.webhook_bad_twiml += 1


def table(all_figures: list[Figures]) -> str:
    """One column per scenario, one row per figure."""

    def lateness(f: Figures, fraction: float) -> str:
        return f"{percentile(f.lateness, fraction):.2f}" if f.lateness else "-"

    rows: list[tuple[str, Any]] = [
        ("callbacks scheduled", lambda f: f.scheduled), ("completed", lambda f: f.states["completed"]),
        ("canceled", lambda f: f.states["canceled"]), ("exhausted", lambda f: f.states["exhausted"]),
        ("still pending (later time)", lambda f: f.pending), ("LOST", lambda f: len(f.lost)),
        ("calls placed", lambda f: f.calls), ("DUPLICATE calls", lambda f: len(f.duplicate)),
        ("EARLY calls", lambda f: len(f.early)), ("OUTSIDE the window", lambda f: len(f.outside)),
        ("lateness p50 (s)", lambda f: lateness(f, 0.5)), ("lateness p99 (s)", lambda f: lateness(f, 0.99)),
        ("lateness max (s)", lambda f: lateness(f, 1.0)),
        (f"> {ON_TIME:g} s late (outages, backlog)", lambda f: len(f.over)),
        ("events expected", lambda f: f.events_expected), ("events LOST", lambda f: len(f.events_lost)),
        ("changes reported TWICE", lambda f: len(f.events_doubled)),
        ("webhooks sent", lambda f: f.webhooks), ("webhook 5xx (no outage)", lambda f: f.webhook_5xx),
        ("webhook 503 in Redis outage", lambda f: f.webhook_503_outage),
        ("webhook bad TwiML", lambda f: f.webhook_bad_twiml),
        ("webhook unanswered (web down)", lambda f: f.webhook_unanswered),
        ("webhook p99 (s)", lambda f: f"{f.webhook_p99:.3f}"),
        ("SIGKILLs w/c/web", lambda f: "/".join(str(sum(v for k, v in f.kills.items() if k.startswith(p)))
                                                for p in ("worker", "clock", "web"))),
        ("exits on their own", lambda f: sum(f.exits.values())),
        ("Redis/Twilio outages", lambda f: "/".join(str(sum(1 for o in f.outages if o[0] == k))
                                                    for k in ("redis", "twilio"))),
    ]
    width = max(14, *(len(f.scenario) + 2 for f in all_figures))
    lines = [f"{'':<30}" + "".join(f"{f.scenario:>{width}}" for f in all_figures)]
    lines += [f"{name:<30}" + "".join(f"{cell(f)!s:>{width}}" for f in all_figures) for name, cell in rows]
    return "\n".join(lines)
