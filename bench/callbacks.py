"""Callbacks under load: how late each dial starts against its time, whether any is early, and the dial rate against
the limit, in its busiest second as the carrier saw it.

Everything real but the phone network: the embedded Redis, the local carrier (in this process), the web app under
gunicorn as the Procfile runs it (the carrier fetches TwiML and posts call status to it), and --workers processes
running the Procfile's worker command exactly (plus its clock, when the Procfile has one). Each customer has one open
thread; their callbacks go in through the API, due evenly over --spread seconds. Every callee is busy by default (the
call ends at once; its retry is 10 minutes away: after the run, but for the first of a 10-minute run): lateness and
the dial rate are of first attempts; the busiest second counts every call.

Presets (--preset; any option given as well overrides it):
  keep-up   2,000 due over 60 s at a limit of 50/s (33/s due): every dial should go on time, none early
  backlog   2,000 due over 20 s at 50/s (100/s due): the queue backs up, so the dial rate is the limit's to fill
  pending   10,000 due over 10 minutes at 50/s (17/s due): a long run, ~11 minutes in all

Lateness is against the callback's scheduled_for: "claimed" when a worker claimed the attempt in Redis (before it
waits for its rate slot), "placed" when the carrier received the call (Twilio's REST create). None may be early.
The dial rate is of placed calls, timed by the carrier: over the run (first to last), as a fraction of the limit and
of what could go (the limit, or the due rate when that is lower), and in the busiest second: sliding over the
carrier's timestamps, as Twilio would count it; it must never exceed the limit.

Prints figures; passes or fails nothing. Without a preset: 10,000 callbacks due over 90 s at 50 calls/s, 2 workers,
about four minutes; it stops waiting after --timeout (default: the time the limit alone needs, or the spread, plus
10 s) and counts what was not dialled by then. Try a quicker one first: .venv/bin/python bench/callbacks.py --preset
keep-up
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Gunicorn, Processes, cpu_seconds, entry, free_ports, percentile
from carrier.control import script_from
from carrier.server import CarrierServer
from core.redis_server import EmbeddedRedis
from core.runner import procfile

SUPPORT_NUMBER = "+14155550100"
API_KEY = "bench-key-0123456789"
ZONE = "America/Los_Angeles"
CARRIER_SCALE = 0.001  # a simulated second of ringing lasts a millisecond
# The caller's shell must not point the processes elsewhere (a real Twilio, a real webhook) or resize them.
SCRUBBED = ("REDIS_URL", "PUBLIC_BASE_URL", "TWILIO_", "THREADLINE_", "CARRIER_PORT", "HOST", "PORT", "WEB_")


def phone_of(i: int) -> str:
    return f"+1415{3000000 + i:07d}"


def thread_id(i: int) -> str:
    return f"bench-{i}"


def thread_body(i: int) -> dict[str, Any]:
    return {"subject": f"App crashes at login (case {i})", "status": "open",
            "customer": {"id": f"u-{i}", "name": "Jane Doe", "phone": phone_of(i), "locale": "en-US",
                         "time_zone": ZONE},
            "messages": [{"id": "m1", "author": "customer", "name": "Jane", "text": "The app closes when I log in",
                          "sent_at": "2026-11-22T10:00:00Z"}]}


def tightest(times: list[float], count: int) -> float:
    """The shortest time holding `count` events: under 1 s for limit + 1 events means more than the limit in 1 s."""
    ordered = sorted(times)
    return min((ordered[i + count - 1] - ordered[i] for i in range(len(ordered) - count + 1)), default=math.nan)


def busiest_second(times: list[float]) -> tuple[int, int]:
    """The most events in one wall-clock second (whole-second buckets) and in any 1-s window (sliding)."""
    ordered = sorted(times)
    buckets: dict[int, int] = {}
    for t in ordered:
        buckets[int(t)] = buckets.get(int(t), 0) + 1
    sliding, start = 0, 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - 1.0:
            start += 1
        sliding = max(sliding, end - start + 1)
    return max(buckets.values(), default=0), sliding


def seed(app: Any, count: int, answer: str, carrier: CarrierServer) -> None:
    """A number open around the clock, one available agent, a thread per customer, and how each phone answers."""
    from context.schemas import ThreadIn
    from directory.models import AgentConfig, NumberConfig

    now = datetime.now(UTC)
    app.extensions["threadline.agents"].put(
        "sam", AgentConfig.model_validate({"name": "Sam", "phone": "+14155550777", "status": "available"}), now)
    app.extensions["threadline.numbers"].put(SUPPORT_NUMBER, NumberConfig.model_validate(
        {"label": "Support", "brand": "Acme", "time_zone": ZONE, "agents": ["sam"],
         "calling_window": {"start": "00:00", "end": "24:00"}}), now)
    threads = app.extensions["threadline.threads"]
    for i in tqdm(range(count), desc="seeding threads", unit=" threads", leave=False):
        threads.put(thread_id(i), ThreadIn.model_validate(thread_body(i)))
    if answer != "human":  # what PUT /_carrier/phones/{phone} does, without 10,000 requests
        script = script_from({"answer": answer})
        with carrier.state.lock:
            for i in range(count):
                carrier.state.phones[phone_of(i)] = script


def create_callbacks(app: Any, due: list[datetime]) -> dict[str, float]:
    """POST /api/v1/threads/{id}/callbacks for each thread, in order of when it is due; each new id's due time."""
    client = app.test_client()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    ids = {}
    for i, when in enumerate(tqdm(due, desc="asking for callbacks", unit=" callbacks", leave=False)):
        response = client.post(f"/api/v1/threads/{thread_id(i)}/callbacks", headers=headers,
                               json={"when": when.isoformat(timespec="milliseconds"), "number": SUPPORT_NUMBER})
        if response.status_code != 201:
            raise SystemExit(f"creating callback {i} answered HTTP {response.status_code}: {response.get_data(True)}")
        body = response.get_json()
        if body["adjusted"] is not None or datetime.fromisoformat(body["scheduled_for"]) != when:
            raise SystemExit(f"callback {i} was moved: asked {when.isoformat()}, got {body['scheduled_for']}")
        ids[body["id"]] = when.timestamp()
    return ids


@dataclass
class Outcome:
    claimed: list[float]  # lateness in seconds, per callback whose first attempt was claimed
    placed: list[float]  # lateness in seconds, per callback whose first call reached the carrier
    placed_at: list[float]  # epoch seconds the carrier received each first call
    every_call: list[float]  # epoch seconds the carrier received each call it was asked for, retries included
    not_claimed: list[float]  # lateness so far (a lower bound) of callbacks not claimed by the end
    not_placed: list[float]
    states: dict[str, int]
    outcomes: dict[str, int]


def read_outcome(app: Any, due: dict[str, float], carrier: CarrierServer, clock_offset: float,
                 ended: float) -> Outcome:
    """Every callback as the store has it, and the carrier's first call to each customer, against when each was
    due (as asked and as created: a failed attempt moves scheduled_for to the retry)."""
    from callbacks.schemas import Callback
    from core import keys

    redis_client = app.extensions["threadline.redis"]
    with redis_client.pipeline(transaction=False) as pipe:
        for callback_id in due:
            pipe.hget(keys.callback(callback_id), "doc")
        callbacks = [Callback.model_validate_json(doc) for doc in pipe.execute()]
    first_call: dict[str, float] = {}  # phone -> epoch seconds the carrier created the call
    result = Outcome([], [], [], [], [], [], {}, {})
    with carrier.state.lock:
        for call in carrier.state.calls.values():
            if call.direction == "outbound-api":
                first_call.setdefault(call.to, call.started + clock_offset)
                result.every_call.append(call.started + clock_offset)
    for callback in callbacks:
        was_due = due[callback.id]
        if callback.attempts and callback.attempts[0].number == 1:
            result.claimed.append(callback.attempts[0].claimed_at.timestamp() - was_due)
            outcome = callback.attempts[0].outcome or "(none yet)"
            result.outcomes[outcome] = result.outcomes.get(outcome, 0) + 1
        else:
            result.not_claimed.append(ended - was_due)
        if callback.phone in first_call:
            result.placed.append(first_call[callback.phone] - was_due)
            result.placed_at.append(first_call[callback.phone])
        else:
            result.not_placed.append(ended - was_due)
        result.states[callback.state.value] = result.states.get(callback.state.value, 0) + 1
    return result


def lateness_row(name: str, done: list[float], missing: list[float]) -> str:
    """p50, p99 and max over every callback; with some not done, the ones not done count at their lateness so
    far, so each figure is a lower bound (marked >=)."""
    ordered = sorted(done + missing)
    mark = ">=" if missing else ""
    cells = "".join(f"{mark + format(percentile(ordered, f), '.2f'):>10}" for f in (0.5, 0.99, 1.0))
    early = sum(1 for x in done if x < 0)
    first = f"{min(done):.3f}" if done else "-"
    return f"{name:<16}{len(done):>8,}{cells}{early:>8}{first:>12}"


# What each preset sets: callbacks, the seconds they fall due over, and the dial limit (calls/s).
PRESETS = {"keep-up": {"callbacks": 2_000, "spread": 60.0, "rate": 50.0},
           "backlog": {"callbacks": 2_000, "spread": 20.0, "rate": 50.0},
           "pending": {"callbacks": 10_000, "spread": 600.0, "rate": 50.0}}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a scenario above (its figures, as defaults)")
    parser.add_argument("--callbacks", type=int, help="callbacks pending (default 10,000)")
    parser.add_argument("--rate", type=float,
                        help="THREADLINE_DIAL_RATE: outbound calls per second across all workers (default 50)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--spread", type=float, help="seconds over which the callbacks fall due, evenly (default 90)")
    parser.add_argument("--lead", type=float, default=0,
                        help="seconds from the start of creating callbacks to the first one due (default: long "
                             "enough for creation to finish first, guessed at 400 callbacks/s, plus 5 s)")
    parser.add_argument("--timeout", type=float, default=0,
                        help="seconds to wait after the first is due (default: max(spread, callbacks/rate) + 10)")
    parser.add_argument("--answer", choices=("busy", "human", "no-answer"), default="busy",
                        help="how every customer's phone answers (default busy: the call ends at once; human: "
                             "answers and presses nothing, so the callback IVR runs on the web app)")
    parser.add_argument("--no-clock", action="store_true",
                        help="don't run the Procfile's clock process (the sweeper), if it has one")
    args = parser.parse_args()
    chosen = PRESETS[args.preset] if args.preset else {"callbacks": 10_000, "spread": 90.0, "rate": 50.0}
    for name, value in chosen.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.callbacks < 1 or args.callbacks > 7_000_000 or args.rate <= 0 or args.workers < 1 or args.spread < 0:
        parser.error("--callbacks 1..7,000,000, --rate and --workers positive, --spread not negative")
    args.lead = args.lead or 5 + args.callbacks / 400
    args.timeout = args.timeout or max(args.spread, args.callbacks / args.rate) + 10
    return args


def environment(redis_url: str, carrier: CarrierServer, web_url: str, rate: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # rq and gunicorn of the venv
    env.update({"REDIS_URL": redis_url, "TWILIO_ACCOUNT_SID": carrier.state.account_sid,
                "TWILIO_AUTH_TOKEN": carrier.state.auth_token, "TWILIO_API_BASE_URL": carrier.url,
                "PUBLIC_BASE_URL": web_url, "THREADLINE_API_KEYS": API_KEY, "THREADLINE_DIAL_RATE": f"{rate:g}"})
    return env


def wait_for_dials(args: argparse.Namespace, carrier: CarrierServer, processes: Processes, first_due: float) -> float:
    """Until the carrier has had a call to every customer, or --timeout after the first was due; when it ended."""
    deadline = first_due + args.timeout
    next_report = first_due + 10
    while True:
        now = time.time()
        with carrier.state.lock:
            placed = len({c.to for c in carrier.state.calls.values() if c.direction == "outbound-api"})
        if placed >= args.callbacks:
            return now
        dead = processes.dead()
        if dead:
            for name in dead:
                print(f"{name} exited; the end of its output:\n{processes.tail(name)}", file=sys.stderr)
            raise SystemExit(f"{', '.join(dead)} stopped during the run")
        if now >= deadline:
            print(f"timed out {args.timeout:g} s after the first was due: {placed:,} of {args.callbacks:,} dialled")
            return now
        if now >= next_report:
            print(f"  {now - first_due:5.0f} s after the first was due: {placed:,} of {args.callbacks:,} dialled",
                  flush=True)
            next_report += 10
        time.sleep(0.5)


def main() -> None:
    args = parse_args()
    commands = procfile()
    if "worker" not in commands:
        raise SystemExit("the Procfile has no worker process")
    clock = None if args.no_clock else commands.get("clock")

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tl-bench-")))
        began = time.perf_counter()
        redis_server = EmbeddedRedis(tmp / "redis", appendonly=False)
        stack.callback(redis_server.stop)
        redis_url = redis_server.start()
        carrier = stack.enter_context(CarrierServer(scale=CARRIER_SCALE, numbers=(SUPPORT_NUMBER,)))
        carrier.state.keep_calls = args.callbacks * 2  # every call is read at the end: none may be dropped
        # The carrier stamps calls with time.monotonic(); this turns that into epoch seconds.
        clock_offset = time.time() - time.monotonic()
        (web_port,) = free_ports(1)
        web_url = f"http://127.0.0.1:{web_port}"
        env = environment(redis_url, carrier, web_url, args.rate)
        os.environ.clear()
        os.environ.update(env)  # this process's app reads the configuration the others do

        from app import create_app

        # Each callback's event is kept undelivered (no platform webhook here): one warning each, not wanted.
        logging.getLogger("context.events").setLevel(logging.ERROR)
        app = create_app()
        stack.callback(app.extensions["threadline.redis"].close)
        seed(app, args.callbacks, args.answer, carrier)
        seeded = time.perf_counter() - began

        stack.enter_context(Gunicorn("app:create_app()", web_port, env, tmp / "web.log"))
        processes = Processes(env, tmp)
        stack.callback(processes.stop)
        for n in range(args.workers):
            processes.start(f"worker-{n + 1}", commands["worker"])
        if clock:
            processes.start("clock", clock)
        cpu_before = cpu_seconds(processes.pids("worker"), reaped=True)

        started_creating = time.time()
        first_due = started_creating + args.lead
        step = args.spread / args.callbacks
        due = [datetime.fromtimestamp(round(first_due + i * step, 3), UTC) for i in range(args.callbacks)]
        ids = create_callbacks(app, due)
        created = time.time()
        print(f"set up in {seeded + created - started_creating:.1f} s: {args.callbacks:,} threads in {seeded:.1f} s, "
              f"{args.callbacks:,} callbacks through the API in {created - started_creating:.1f} s "
              f"({args.callbacks / (created - started_creating):,.0f}/s), finished "
              f"{first_due - created:.1f} s before the first was due")
        if created > first_due:
            print(f"warning: creating callbacks ran {created - first_due:.1f} s past the first due time; "
                  "rerun with a longer --lead")
        print(f"{os.cpu_count()} CPUs shared by Redis, the carrier and this script, gunicorn and {args.workers} "
              f"worker(s){' and the clock' if clock else ''}; callees answer {args.answer}; "
              f"waiting up to {args.timeout:g} s after the first is due\n", flush=True)

        ended = wait_for_dials(args, carrier, processes, first_due)
        time.sleep(1)  # let claims in flight reach the carrier
        worker_cpu = cpu_seconds(processes.pids("worker"), reaped=True) - cpu_before
        result = read_outcome(app, ids, carrier, clock_offset, ended)
        notes = diagnose(app, processes, worker_cpu, len(result.placed_at))
    report(args, result, clock, notes)


@dataclass
class Notes:
    worker_cpu_per_dial: float
    jobs_started: int  # dial jobs the workers began, by their logs
    sweep_jobs: int  # of which the clock's sweep queued
    queued: int  # jobs waiting in the queue at the end
    failed_jobs: int
    log_errors: dict[str, int]
    tails: dict[str, str]


def diagnose(app: Any, processes: Processes, worker_cpu: float, placed: int) -> Notes:
    from rq.registry import FailedJobRegistry

    queue = app.extensions["threadline.queue"]
    started = f" {queue.name}: callbacks.dialer.dial("  # RQ's line as a worker begins a job
    jobs = [line for name in processes.running if name.startswith("worker") for line in processes.lines(name)
            if started in line]
    errors = {name: sum(1 for line in processes.lines(name) if "Traceback" in line or "ERROR" in line)
              for name in processes.running}
    tails = {name: processes.tail(name) for name, count in errors.items() if count}
    return Notes(worker_cpu / placed if placed else math.nan, len(jobs), sum(1 for j in jobs if "-sweep-" in j),
                 queue.count, FailedJobRegistry(queue=queue).count, errors, tails)


def report(args: argparse.Namespace, result: Outcome, clock: str | None, notes: Notes) -> None:
    placed = sorted(result.placed_at)
    span = placed[-1] - placed[0] if len(placed) > 1 else 0.0
    overall = (len(placed) - 1) / span if span else math.nan
    bucket, sliding = busiest_second(result.every_call)  # what Twilio counts: every call, a retry too
    due_rate = args.callbacks / args.spread if args.spread else math.inf
    could = min(due_rate, args.rate)
    backlog = max(0.0, args.callbacks / args.rate - args.spread)
    over = math.floor(args.rate) + 1
    span_over = tightest(result.every_call, over)
    shortest = "-" if math.isnan(span_over) else f"{span_over:.3f} s"
    early = sum(1 for x in result.placed if x < 0)
    print(f"\n{args.preset or 'custom'}: {args.callbacks:,} callbacks due over {args.spread:g} s ({due_rate:.1f}/s), "
          f"limit {args.rate:g}/s, {args.workers} worker(s), clock {'yes' if clock else 'no'}; "
          f"load average {Path('/proc/loadavg').read_text().split()[0]} (1 min)")
    print(f"dial rate      {overall:.1f}/s = {overall / args.rate:.1%} of the limit, {overall / could:.1%} of what "
          f"could go ({could:.1f}/s), over the {span:.1f} s from the first dial to the last")
    print(f"busiest 1 s    {sliding} dials in any 1-s window (limit {args.rate:g}: "
          f"{'never exceeded' if sliding <= args.rate else 'EXCEEDED'}), {bucket} in one wall-clock second; "
          f"{over} dials took at least {shortest}")
    print(f"early dials    {early}")
    print(f"lateness p50   {percentile(result.placed + result.not_placed, 0.5):.2f} s, "
          f"p99 {percentile(result.placed + result.not_placed, 0.99):.2f} s (call placed, against its due time)")
    print(f"worker CPU     {notes.worker_cpu_per_dial:.4f} s per dial")
    print("(all timed by the carrier as it received each call, as Twilio counts its calls per second)")
    print(f"with the limit the only bottleneck, the last would be dialled ~{backlog:.0f} s late\n")
    print(f"{'lateness (s)':<16}{'count':>8}{'p50':>10}{'p99':>10}{'max':>10}{'early':>8}{'earliest':>12}")
    print(lateness_row("claimed", result.claimed, result.not_claimed))
    print(lateness_row("call placed", result.placed, result.not_placed))
    if result.not_claimed or result.not_placed:
        print(f"{len(result.not_claimed):,} not claimed and {len(result.not_placed):,} not placed by the end: "
              "counted at their lateness so far, so the figures marked >= are lower bounds")
    print(f"\nstates: {', '.join(f'{k} {v:,}' for k, v in sorted(result.states.items()))}; first attempts' "
          f"outcomes: {', '.join(f'{k} {v:,}' for k, v in sorted(result.outcomes.items()))}")
    print(f"dial jobs started: {notes.jobs_started:,} ({notes.sweep_jobs:,} queued again by the clock's sweep); "
          f"left in the queue: {notes.queued:,}; RQ failed jobs: {notes.failed_jobs}")
    print(f"log lines with Traceback or ERROR: {', '.join(f'{k} {v}' for k, v in notes.log_errors.items())}")
    for name, tail in notes.tails.items():
        print(f"the end of {name}'s output:\n{tail}")


if __name__ == "__main__":
    entry(main, "workers, gunicorn, the carrier and Redis")
