"""Screen pops with hundreds or thousands of desks open, per gunicorn worker class: whisper webhook -> SSE frame
latency, and the inbound-call webhook's p99 with and without the desks' event streams open.

For each worker class: gunicorn with the project's gunicorn.conf.py (the class, and optionally workers, threads
and worker connections, overridden on its command line), then
  1. one admin API number sync, whose "Twilio" is an address that speaks no TLS: whether a worker can still make
     HTTPS requests (gevent patching ssl after the preloaded app imported it breaks them);
  2. /voice/incoming under wrk with no desk open (p50, p99, requests/s, answers checked);
  3. D desks holding GET /desk/events (one agent each, signed in), as agents keep the desk open all day;
  4. one signed POST /voice/whisper per call (the webhook of the agent's leg, distinct CallSid/ParentCallSid),
     sent at a steady rate to agents whose desk is connected, each timed from sending it to its screen_pop frame
     arriving on that agent's stream;
  5. /voice/incoming under wrk again, with the D streams still open.
Every phase is bounded: a class that can't hold D streams shows how many connected and the webhooks it starved.

    .venv/bin/python bench/screenpop.py                       # gthread, then gevent, as gunicorn.conf.py has them
    .venv/bin/python bench/screenpop.py --worker-class gevent --desks 2000      # the Procfile's web process
    .venv/bin/python bench/screenpop.py --worker-class gevent-early --redis-max-connections 1000

gevent-early patches the standard library before the app is preloaded; --redis-max-connections sets the app's
Redis pool size per process through REDIS_URL (the open streams share one pub/sub connection per process, so the
pool serves requests only). Redis's connected clients are counted after the load without desks and after the load
with them: the desks add one subscription per gunicorn worker, whatever their number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import GUNICORN_CONF, ROOT, entry, free_ports, percentile, require_wrk
from bench.desks import SECRET_KEY, agent_id, seed
from bench.webhooks import ACCOUNT_SID, API_KEY, AUTH_TOKEN, CUSTOMERS
from bench.workerclass import ADMIN_KEY, Outcome, run_class
from core.redis_server import EmbeddedRedis

CLASSES = ("gthread", "gevent", "gevent-early")
AIM_P99_GROWTH = 0.20  # the webhook's p99 with the desks open, at most this much above its p99 without

def ms(values: list[float], fraction: float) -> str:
    """A percentile of seconds, in milliseconds; "-" for none."""
    return f"{percentile(values, fraction) * 1000:.1f}" if values else "-"


def report(outcomes: list[Outcome], args: argparse.Namespace) -> None:
    print(f"\nScreen pops: {args.calls} signed POST /voice/whisper at {args.call_rate:g}/s to agents with an open desk;"
          " a pop is timed from sending the webhook to its screen_pop frame arriving on that agent's stream (ms)")
    print(f"{'worker class':<14}{'workers, Redis pool':<32}{'desks open':>11}{'whispers ok':>12}{'p50':>7}{'p95':>7}"
          f"{'pops':>9}{'pop p50':>9}{'pop p95':>9}{'pop max':>9}")
    for o in outcomes:
        answered = [c.answered - c.sent for c in o.calls if c.ok and c.answered]
        pops = [c.desk.frames[c.parent] - c.sent for c in o.calls if c.parent in c.desk.frames]
        print(f"{o.name:<14}{o.settings:<32}{f'{o.connected}/{o.desks}':>11}{f'{len(answered)}/{args.calls}':>12}"
              f"{ms(answered, 0.5):>7}{ms(answered, 0.95):>7}{f'{len(pops)}/{args.calls}':>9}{ms(pops, 0.5):>9}"
              f"{ms(pops, 0.95):>9}{ms(pops, 1.0):>9}")
    connections = "keep-alive" if args.keepalive else "a new connection each"
    print(f"\nInbound-call webhooks: signed POST /voice/incoming from wrk, {args.connections} connections "
          f"({connections}), {args.seconds:g} s; wrk gives up on a request after 5 s; p50/p99 of those answered")
    print(f"{'worker class':<14}{'desk streams open':<19}{'requests/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'answered':>10}"
          f"{'greeted':>10}{'unanswered':>11}{'socket errors':>14}{'app failures':>13}{'CPU ms/request':>15}")
    for o in outcomes:
        for label, load in (("none", o.without), (f"{o.connected}/{o.desks}", o.loaded)):
            if load is None:
                continue
            p50, p99 = (f"{load.p50_ms:.1f}", f"{load.p99_ms:.1f}") if load.requests else ("starved", "starved")
            print(f"{o.name:<14}{label:<19}{load.rps:>11,.0f}{p50:>9}{p99:>9}{load.requests:>10,}"
                  f"{load.requests - load.non_2xx - load.bad:>10,}{load.unanswered:>11,}{load.failed:>14,}"
                  f"{load.logged:>13,}{load.cpu_ms:>15.2f}")
    for o in outcomes:
        if o.loaded is not None and o.loaded.requests and o.without.requests:
            change = (o.loaded.p99_ms / o.without.p99_ms - 1) * 100
            print(f"{o.name}: p99 with {o.connected} desks open {change:+.0f} % of its p99 without (aim: at most "
                  f"+{AIM_P99_GROWTH:.0%}); load average {o.load[0]:.2f} at the start, {o.load[1]:.2f} at the end")
    summary(outcomes)
    print(f"\n{'worker class':<14}{'outbound HTTPS':>16}{'streams open at the end':>24}{'workers RSS MB':>15}"
          f"{'Redis clients without/with desks':>34}{'gunicorn CPU s':>15}  whisper failures")
    for o in outcomes:
        failures = Counter(c.error or f"HTTP {c.status}" for c in o.calls if not c.ok)
        text = ", ".join(f"{n} {kind}" for kind, n in failures.items()) or "none"
        clients = f"{o.redis_clients_without}/{o.redis_clients}"
        print(f"{o.name:<14}{o.https:>16}{f'{o.still_open}/{o.connected}':>24}{o.rss_mb:>15.0f}{clients:>34}"
              f"{o.cpu_s:>15.1f}  {text if o.calls else 'none sent: no desk connected'}")
    print("(Redis clients: connected_clients after each wrk load, this benchmark's own connection included)")
    for o in outcomes:
        for load in (o.without, o.loaded):
            if load and load.repeated:
                print(f"warning: {o.name}: wrk sent {load.repeated:,} repeated calls (answered from the replay cache)")
        if o.boots > o.workers:
            print(f"warning: {o.name}: {o.boots} worker boots for {o.workers} workers (a worker died or timed out)")
        for line in o.notes:
            print(f"{o.name} log: {line}")


def summary(outcomes: list[Outcome]) -> None:
    """Per worker class measured more than once (--rounds): the pops of every round, and the mean p99s."""
    for name in dict.fromkeys(o.name for o in outcomes):
        runs = [o for o in outcomes if o.name == name and o.loaded is not None and o.loaded.requests]
        if len(runs) < 2:
            continue
        pops = [c.desk.frames[c.parent] - c.sent for o in runs for c in o.calls if c.parent in c.desk.frames]
        without = sum(o.without.p99_ms for o in runs) / len(runs)
        loaded = sum(o.loaded.p99_ms for o in runs if o.loaded) / len(runs)
        cpu_without = sum(o.without.cpu_ms for o in runs) / len(runs)
        cpu_loaded = sum(o.loaded.cpu_ms for o in runs if o.loaded) / len(runs)
        load = sum(sum(o.load) / 2 for o in runs) / len(runs)
        print(f"{name}, {len(runs)} rounds: pop p50 {ms(pops, 0.5)} ms, p95 {ms(pops, 0.95)} ms; webhook p99 mean "
              f"{without:.1f} ms without desks, {loaded:.1f} ms with them ({(loaded / without - 1) * 100:+.0f} %); "
              f"gunicorn CPU per webhook {cpu_without:.2f} ms without, {cpu_loaded:.2f} ms with; mean load average "
              f"{load:.2f}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker-class", action="append", choices=CLASSES, dest="classes",
                        help="gunicorn worker class to measure, repeatable (default: gthread, then gevent); "
                             "gevent-early: gevent with the standard library patched before the app is preloaded")
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (default: gunicorn.conf.py's)")
    parser.add_argument("--threads", type=int, default=0, help="gthread threads per worker (default: the config's)")
    parser.add_argument("--worker-connections", type=int, default=0,
                        help="connections per gevent worker (default: gunicorn's, 1000)")
    parser.add_argument("--desks", type=int, default=200,
                        help="desk event streams to open, one agent each (default 200; 2000 is the issue's target)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure each worker class this many times, a fresh gunicorn each, the classes taking "
                             "turns; prints the mean p99s as well (default 1)")
    parser.add_argument("--calls", type=int, default=200, help="whisper webhooks, one per call (default 200)")
    parser.add_argument("--call-rate", type=float, default=50, help="whisper webhooks per second (default 50)")
    parser.add_argument("--seconds", type=float, default=10, help="wrk load per phase, seconds (default 10)")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured wrk load first, seconds (default 2)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    parser.add_argument("--connect-timeout", type=float, default=15,
                        help="how long the desks get to connect, seconds (default 15)")
    parser.add_argument("--timeout", type=float, default=5,
                        help="a whisper's answer, and its frame after the last one, seconds (default 5)")
    parser.add_argument("--sign-in", type=int, default=4,
                        help="agents who sign in through the login form (argon2: ~0.2 s of CPU each); the others' "
                             "desk sessions are made as a sign-in makes them (default 4)")
    parser.add_argument("--redis-max-connections", type=int, default=0,
                        help="the app's Redis pool size per process, set through REDIS_URL's query "
                             "(default: as the app makes it; redis-py's default is 100)")
    parser.add_argument("--keepalive", action="store_true",
                        help="wrk keeps its connections open (default: a new connection for each webhook, as "
                             "Twilio's arrive; kept-alive ones stick to one gunicorn worker, which makes runs vary)")
    parser.add_argument("--logs", type=Path, help="copy each gunicorn's log into this folder")
    args = parser.parse_args()
    args.classes = (args.classes or ["gthread", "gevent"]) * args.rounds
    if args.desks < 1:
        parser.error("--desks must be at least 1")
    if min(args.rounds, args.calls, args.call_rate, args.seconds, args.connections, args.wrk_threads,
           args.connect_timeout, args.timeout) <= 0 or min(args.workers, args.threads, args.worker_connections,
                                                           args.warmup, args.sign_in, args.redis_max_connections) < 0:
        parser.error("counts, rates and times must be positive")
    if args.connections < args.wrk_threads:
        parser.error("wrk needs at least one connection per thread")
    return args


def app_redis_url(redis_url: str, args: argparse.Namespace) -> str:
    """The URL gunicorn's app connects with; redis-py reads max_connections from its query."""
    return f"{redis_url}?max_connections={args.redis_max_connections}" if args.redis_max_connections else redis_url


async def run(args: argparse.Namespace, env: dict[str, str], defaults: dict[str, Any]) -> list[Outcome]:
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="tl-screenpop-") as tmp_name:
        tmp = Path(tmp_name)
        redis_server = EmbeddedRedis(tmp / "redis", appendonly=False)
        try:
            redis_url = redis_server.start()
            began = time.perf_counter()
            cookies = await asyncio.to_thread(seed, redis_url, args.desks, min(args.sign_in, args.desks))
            print(f"seeded {CUSTOMERS:,} callers' threads and {args.desks} agents in "
                  f"{time.perf_counter() - began:.1f} s; {os.cpu_count()} CPUs shared by gunicorn, Redis, wrk and "
                  f"this client")
            context = {"tmp": tmp, "redis_url": redis_url, "defaults": defaults, "cookies": cookies,
                       "agents": [agent_id(i) for i in range(args.desks)],
                       "env": {**env, "REDIS_URL": app_redis_url(redis_url, args), "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                               "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "THREADLINE_API_KEYS": API_KEY,
                               "THREADLINE_ADMIN_KEYS": ADMIN_KEY, "THREADLINE_SECRET_KEY": SECRET_KEY}}
            for index, (name, port) in enumerate(zip(args.classes, free_ports(len(args.classes)), strict=True)):
                began = time.perf_counter()
                print(f"{name}:")
                outcomes.append(await run_class(index + 1, name, port, context, args))
                print(f"  {name}: done in {time.perf_counter() - began:.0f} s")
        finally:
            redis_server.stop()
    return outcomes


def config_defaults() -> dict[str, Any]:
    """gunicorn.conf.py's settings, read in a child process: the file may monkey-patch whoever runs it."""
    code = ("import json, runpy, sys; s = runpy.run_path(sys.argv[1]); print(json.dumps({k: s.get(k) for k in "
            "('workers', 'threads', 'worker_class', 'worker_connections')}))")
    done = subprocess.run([sys.executable, "-c", code, str(GUNICORN_CONF)], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"cannot read {GUNICORN_CONF.name}:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    args = parse_args()
    require_wrk()
    if any(c.startswith("gevent") for c in args.classes):
        try:
            import gevent  # noqa: F401
        except ImportError:
            raise SystemExit("gevent is not installed: .venv/bin/pip install gevent") from None
    drop = ("PUBLIC_BASE_URL", "TWILIO_EDGE", "TWILIO_REGION", "GUNICORN_CMD_ARGS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    os.environ["THREADLINE_SECRET_KEY"] = SECRET_KEY  # for the app seeding the data, as for gunicorn's
    defaults = config_defaults()
    began = time.perf_counter()
    outcomes = asyncio.run(run(args, env, defaults))
    report(outcomes, args)
    print(f"\n(total {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    entry(main, "gunicorn and Redis")
