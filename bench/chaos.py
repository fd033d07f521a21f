"""Chaos: callbacks to scripted phones of every outcome while the Procfile's processes, Redis and Twilio fail.

Each scenario starts afresh: the embedded Redis with its AOF, the local carrier reached through a proxy the bench
can cut, the platform's webhook receiver, and the Procfile's web, workers and clock (each in its own process group,
restarted at once when they die, as a supervisor would). Callbacks go in through the API, due evenly over --minutes,
to phones that answer and press 1 (completed), press 3 (canceled), or are busy, don't answer, fail or are a
voicemail box (retried a minute later, then exhausted); half go to a number whose calling window closes mid-run.
Meanwhile 200 signed Twilio webhooks a second hit the web, and the scenario's faults strike:

  baseline        none
  worker-kills    a worker SIGKILLed every 3-10 s (its work horse too), restarted at once
  all-kills       a worker, the clock or the web SIGKILLed every 3-10 s, restarted at once
  redis-restarts  Redis SIGKILLed every 25-45 s, down --redis-down s, restarted from its AOF
  twilio-down     Twilio's REST API unreachable for 30 s (connections reset)
  ci              the test suite's mix: all-kills plus one Redis restart

Then every callback must have moved on, and each figure is read from outside (see bench/chaos_measure.py). Exits 1
on any lost callback, duplicate, early or out-of-window call, lost event, or webhook 5xx outside a Redis outage.
Lateness is printed, not judged. Default: every scenario, 150 callbacks over 90 s, 4 to 5 minutes each.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.callbacks import SUPPORT_NUMBER, ZONE, phone_of, thread_body, thread_id
from bench.chaos_load import Load
from bench.chaos_measure import Call, Figures, Planned, Window, event_key, expected_events, measure, table
from bench.chaos_rig import Rig, api_headers
from bench.common import ROOT, entry

WINDOWED_NUMBER = "+14155550101"  # its calling window closes part way through the run
AGENT_PHONE = "+14155550777"
RETRY_MINUTES = 1
KINDS: dict[str, dict[str, Any]] = {  # how each callee's phone behaves
    "connect": {"answer": "human", "keys": ["1"], "hangup_after": 30},
    "cancel": {"answer": "human", "keys": ["3"]},
    "busy": {"answer": "busy"},
    "no-answer": {"answer": "no-answer"},
    "failed": {"answer": "failed"},
    "voicemail": {"answer": "machine"},
}


@dataclass(frozen=True)
class Faults:
    kill: tuple[str, ...] = ()  # Procfile processes SIGKILLed every 3-10 s
    redis: int = 0  # Redis outages (0: none; -1: every 25-45 s)
    twilio: float = 0  # seconds Twilio is unreachable, starting a third of the way in


SCENARIOS = {
    "baseline": Faults(),
    "worker-kills": Faults(kill=("worker",)),
    "all-kills": Faults(kill=("worker", "clock", "web")),
    "redis-restarts": Faults(redis=-1),
    "twilio-down": Faults(twilio=30),
    "ci": Faults(kill=("worker", "clock", "web"), redis=1),
}


@dataclass
class Options:
    callbacks: int = 150
    minutes: float = 1.5
    rate: float = 5  # THREADLINE_DIAL_RATE
    seed: int = 1
    workers: int = 2
    webhooks: float = 200  # per second
    redis_down: float = 3  # seconds per Redis outage
    settle: float = 75  # seconds, at most, for every callback to move on once the faults stop (reconcile + sweep)


def seed_line(app: Any, rig: Rig, window_end: int) -> None:
    """An agent who answers and accepts, and two numbers: open all day, and closing at window_end (minutes)."""
    from carrier.control import script_from
    from directory.models import AgentConfig, NumberConfig

    now = datetime.now(UTC)
    app.extensions["threadline.agents"].put("sam", AgentConfig.model_validate(
        {"name": "Sam", "phone": AGENT_PHONE, "status": "available"}), now)
    end = "24:00" if window_end >= 1440 else f"{window_end // 60:02d}:{window_end % 60:02d}"
    for number, window in ((SUPPORT_NUMBER, "24:00"), (WINDOWED_NUMBER, end)):
        app.extensions["threadline.numbers"].put(number, NumberConfig.model_validate(
            {"label": "Support", "brand": "Acme", "time_zone": ZONE, "agents": ["sam"], "max_attempts": 2,
             "retry_minutes": [RETRY_MINUTES], "calling_window": {"start": "00:00", "end": window}}), now)
    with rig.carrier.state.lock:
        rig.carrier.state.phones[AGENT_PHONE] = script_from({"answer": "human", "keys": ["1"], "hangup_after": 20})


def plan_callbacks(app: Any, rig: Rig, options: Options, first_due: float, window_close: float) -> list[Planned]:
    """A thread per customer, their phone scripted, and their callback asked for through the API."""
    from carrier.control import script_from
    from context.schemas import ThreadIn

    client, threads = app.test_client(), app.extensions["threadline.threads"]
    step = options.minutes * 60 / options.callbacks
    plans = []
    for i in range(options.callbacks):
        kind = list(KINDS)[i % len(KINDS)]
        due = datetime.fromtimestamp(round(first_due + i * step, 3), UTC)
        number = WINDOWED_NUMBER if i % 2 and due.timestamp() < window_close - 15 else SUPPORT_NUMBER
        threads.put(thread_id(i), ThreadIn.model_validate(thread_body(i)))
        with rig.carrier.state.lock:
            rig.carrier.state.phones[phone_of(i)] = script_from(KINDS[kind])
        response = client.post(f"/api/v1/threads/{thread_id(i)}/callbacks", headers=api_headers(),
                               json={"when": due.isoformat(timespec="milliseconds"), "number": number})
        body = response.get_json()
        if response.status_code != 201 or body["adjusted"] is not None:
            raise SystemExit(f"callback {i}: HTTP {response.status_code} {body}")
        plans.append(Planned(body["id"], phone_of(i), number,
                             kind, datetime.fromisoformat(body["scheduled_for"]).timestamp()))
    return plans


def strike(rig: Rig, faults: Faults, options: Options, rng: random.Random, began: float,
           until: float) -> list[threading.Thread]:
    """Start the scenario's faults, each on its own thread, until the epoch until."""

    def kills() -> None:
        while not rig.stopping.wait(rng.uniform(3, 10)) and time.time() < until:
            rig.crash(rig.random_victim(rng, faults.kill))

    def redis() -> None:
        count = 0
        while faults.redis < 0 or count < faults.redis:
            wait = rng.uniform(25, 45) if faults.redis < 0 else rng.uniform(0.2, 0.6) * (until - began)
            if rig.stopping.wait(wait) or time.time() + wait > until:
                return
            rig.redis_outage(options.redis_down)
            count += 1

    def twilio() -> None:
        if not rig.stopping.wait((until - began) / 3):
            rig.twilio_outage(faults.twilio)

    jobs = [job for job, on in ((kills, faults.kill), (redis, faults.redis), (twilio, faults.twilio)) if on]
    threads = [threading.Thread(target=job, daemon=True) for job in jobs]
    for thread in threads:
        thread.start()
    return threads


def records_of(app: Any, plans: list[Planned]) -> dict[str, dict[str, Any] | None]:
    client = app.test_client()
    answers = {p.id: client.get(f"/api/v1/callbacks/{p.id}", headers=api_headers()) for p in plans}
    return {cb: (r.get_json() if r.status_code == 200 else None) for cb, r in answers.items()}


def wait_settled(app: Any, plans: list[Planned], deadline: float) -> float:
    """Until no callback is still dialling or overdue (or the deadline); when that was."""
    while time.time() < deadline:
        now = time.time()
        records = records_of(app, plans).values()
        if all(r and (r["state"] not in ("dialing", "in_call") and not (
                r["state"] == "scheduled" and datetime.fromisoformat(r["scheduled_for"]).timestamp() < now - 5))
               for r in records):
            return now
        time.sleep(2)
    return time.time()


def wait_events(rig: Rig, records: dict[str, dict[str, Any] | None], seconds: float) -> None:
    """Until the platform has an event for every change these records went through, or seconds pass."""
    wanted = set().union(*(expected_events(r) for r in records.values() if r))
    deadline = time.time() + seconds
    while time.time() < deadline:
        if wanted <= {event_key(e) for e in rig.platform.events()}:
            return
        time.sleep(2)


def carrier_calls(rig: Rig) -> dict[str, list[Call]]:
    """The calls Threadline asked the carrier for (REST creates), by phone, oldest first."""
    by_phone: dict[str, list[Call]] = {}
    with rig.carrier.state.lock:
        for call in rig.carrier.state.calls.values():
            if call.direction == "outbound-api":
                ended = call.end_time.timestamp() if call.end_time else None
                by_phone.setdefault(call.to, []).append(Call(call.sid, call.started + rig.clock_offset, ended))
    return {phone: sorted(calls, key=lambda c: c.started) for phone, calls in by_phone.items()}


def window_close(now: float, minutes: float, lead: float) -> tuple[int, float]:
    """The windowed number's closing minute (local) and its epoch: about 60 % of the way through the calls."""
    local = datetime.fromtimestamp(now + lead + 0.6 * minutes * 60, ZoneInfo(ZONE))
    closing = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    minute = min(1440, (closing.hour * 60 + closing.minute) or 1440)
    return minute, closing.timestamp()


def run_scenario(name: str, options: Options, tmp: Path) -> Figures:
    """One scenario from a fresh Redis to its figures; the caller's environment is left as it was."""
    faults, rng = SCENARIOS[name], random.Random(f"{options.seed}-{name}")
    saved = dict(os.environ)
    rig = Rig(tmp, options.rate, options.workers)
    load_proc = None
    try:
        rig.start((SUPPORT_NUMBER, WINDOWED_NUMBER))
        os.environ.clear()
        os.environ.update(rig.env)  # this process's app reads the configuration the others do
        from app import create_app

        app = create_app()
        lead = 5 + options.callbacks / 50
        minute, closes = window_close(time.time(), options.minutes, lead)
        seed_line(app, rig, minute)
        first_due = time.time() + lead
        plans = plan_callbacks(app, rig, options, first_due, closes)
        out = tmp / "load.json"
        load_proc = start_load(rig, options.webhooks, out, saved)
        began = time.time()
        # Through every first attempt and its retry a minute later (+10 % jitter), then the faults stop.
        until = max(p.due for p in plans) + RETRY_MINUTES * 66 + 10
        print(f"{name}: {len(plans)} callbacks due over {options.minutes:g} min from {first_due - began:+.0f} s; "
              f"faults until {until - began:.0f} s", flush=True)
        for thread in strike(rig, faults, options, rng, began, until):
            thread.join(max(0.0, until - time.time()) + 60)
        rig.stopping.wait(max(0.0, until - time.time()))
        load_proc.terminate()
        load_proc.wait(30)
        settled = wait_settled(app, plans, time.time() + options.settle)
        # One moment's records and calls: a retry that falls due while the events are awaited is neither lost
        # (dialling) nor a duplicate (a call its snapshot has no attempt for).
        calls = carrier_calls(rig)  # first: a call placed after it has its attempt in the records, not the reverse
        records = records_of(app, plans)
        wait_events(rig, records, 45)
        windows = {SUPPORT_NUMBER: Window(ZONE, 0, 1440), WINDOWED_NUMBER: Window(ZONE, 0, minute)}
        figures = measure(name, plans, records, calls, rig.platform.events(),
                          Load.read(out), windows, RETRY_MINUTES * 60, settled - 15, rig.outages, options.rate)
        figures.kills, figures.exits = dict(rig.kills), dict(rig.exits)
        errors = {k: v for k, v in rig.log_errors().items() if v}
        print(f"{name}: done in {time.time() - began:.0f} s; tracebacks in logs: {errors or 'none'}; "
              f"logs in {tmp}", flush=True)
        return figures
    finally:
        tear_down(rig, load_proc, saved)


def start_load(rig: Rig, per_second: float, out: Path, environ: dict[str, str]) -> subprocess.Popen[bytes]:
    """Signed webhooks at per_second to the rig's web, in a process of their own, their answers written to out."""
    return subprocess.Popen(
        [sys.executable, "-m", "bench.chaos_load", rig.web_url, rig.carrier.state.auth_token,
         rig.carrier.state.account_sid, SUPPORT_NUMBER, f"{per_second:g}", str(out)], cwd=ROOT, env=environ)


def tear_down(rig: Rig, load_proc: subprocess.Popen[bytes] | None, saved: dict[str, str]) -> None:
    """Stop the load and the rig, and give this process back the environment it had."""
    if load_proc and load_proc.poll() is None:
        load_proc.kill()
    rig.stop()
    os.environ.clear()
    os.environ.update(saved)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all",
                        help="one scenario, or all but ci (default)")
    parser.add_argument("--callbacks", type=int, default=150, help="callbacks per scenario (default 150)")
    parser.add_argument("--minutes", type=float, default=1.5, help="minutes over which they fall due (default 1.5)")
    parser.add_argument("--rate", type=float, default=5, help="THREADLINE_DIAL_RATE (default 5 calls/s)")
    parser.add_argument("--seed", type=int, default=1, help="the faults' random seed (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep each scenario's logs and Redis directory")
    args = parser.parse_args()
    if args.callbacks < 6 or args.minutes <= 0 or args.rate <= 0:
        parser.error("--callbacks at least 6, --minutes and --rate positive")
    return args


def main() -> None:
    args = parse_args()
    names = [n for n in SCENARIOS if n != "ci"] if args.scenario == "all" else [args.scenario]
    options = Options(callbacks=args.callbacks, minutes=args.minutes, rate=args.rate, seed=args.seed)
    results = []
    for name in names:
        tmp = Path(tempfile.mkdtemp(prefix=f"tl-chaos-{name}-"))
        results.append(run_scenario(name, options, tmp))
        print(f"\n{table(results[-1:])}\n", flush=True)  # each scenario's figures as soon as it ends
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{table(results)}\n")
    failed = False
    for figures in results:
        for failure in figures.failures():
            print(f"{figures.scenario}: {failure}")
            failed = True
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    entry(main, "the scenario's processes, the carrier and Redis")
