"""One gunicorn worker class under bench/screenpop.py: HTTPS probe, wrk load without and with desks, whispers."""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import redis

from bench.common import GUNICORN_CONF, Gunicorn, cpu_seconds, run_wrk
from bench.desks import Call, Desk, fire, hold, make_calls, sign_in_all
from bench.webhooks import PATH, SUPPORT_NUMBER, check_real, write_requests

ADMIN_KEY = "bench-admin-key-0123456789"
REQUESTS_PER_SECOND = 5000  # signed /voice/incoming calls generated per second of wrk load (none is a replay)
# "gevent-early": the project's settings, read after gevent has patched the standard library in the master, before
# the preloaded app imports socket, ssl and threading (as a monkey.patch_all() at the top of gunicorn.conf.py would).
EARLY_PATCH_CONF = '''"""gunicorn.conf.py after gevent's monkey.patch_all(), for bench/screenpop.py."""
from gevent import monkey

monkey.patch_all()

import runpy  # noqa: E402

globals().update({{k: v for k, v in runpy.run_path({conf!r}).items() if not k.startswith("_")}})
'''
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Warning|Exit)\b")

class Server(Gunicorn):
    """bench/webhooks' gunicorn with settings overridden on its command line, and a quick stop."""

    def __init__(self, port: int, env: dict[str, str], log: Path, conf: Path, extra: list[str]) -> None:
        super().__init__("app:create_app()", port, env, log, conf, extra, quick=True)

    def workers_rss_mb(self) -> float:
        """Resident memory of its workers, in MB."""
        total = 0
        for pid in self.pids()[1:]:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                total += int(re.search(r"^VmRSS:\s+(\d+)", status, re.MULTILINE).group(1))  # type: ignore[union-attr]
            except (OSError, AttributeError):
                pass
        return total / 1024

    def log_size(self) -> int:
        """How far its log has grown, in bytes."""
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def failures_since(self, offset: int) -> int:
        """Requests the app logged as failed (answered with an apology or a 500) since offset in its log."""
        try:
            with self.log.open("rb") as log:
                log.seek(offset)
                text = log.read().decode(errors="replace")
        except OSError:
            return 0
        return text.count(" failed for call ") + text.count("unexpected error on ")

    def log_findings(self) -> tuple[int, list[str]]:
        """Worker boots, and what else the log says beyond access lines: warnings and exceptions, counted."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return 0, []
        boots = sum("Booting worker" in line for line in lines)
        found = Counter(line.split(" (", 1)[0][:200] for line in lines if EXCEPTION_LINE.match(line) or
                        "WORKER TIMEOUT" in line or "Worker failed" in line or "MonkeyPatchWarning" in line)
        return boots, [f"{n} x {line}" for line, n in found.most_common(5)]


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    failed: int  # socket errors and timeouts, as wrk counts them
    non_2xx: int
    bad: int  # HTTP 200, but the app's apology instead of the caller's greeting
    unanswered: int  # sent but not answered by the end: timed out, or still waiting
    repeated: int
    logged: int = 0  # failures the app logged meanwhile
    cpu_ms: float = 0.0  # gunicorn's CPU time per answered request: unlike latency, barely moved by others' load


@dataclass
class Outcome:
    name: str
    settings: str
    without: Load
    desks: int = 0
    connected: int = 0
    connect_s: float = 0.0
    calls: list[Call] = field(default_factory=list)
    loaded: Load | None = None
    still_open: int = 0
    rss_mb: float = 0.0
    redis_clients_without: int = 0  # connected to Redis after the load without desks: gunicorn's and ours
    redis_clients: int = 0  # the same with the desks open, after the load with them
    cpu_s: float = 0.0
    https: str = ""
    workers: int = 0
    load: tuple[float, float] = (0.0, 0.0)  # the machine's 1-minute load average at the start and at the end
    boots: int = 0
    notes: list[str] = field(default_factory=list)


def wrk(port: int, requests_file: Path, seconds: float, args: argparse.Namespace) -> dict[str, float]:
    """wrk against /voice/incoming, its answers checked, on kept-alive or new connections as args say."""
    return run_wrk(f"http://127.0.0.1:{port}{PATH}", requests_file, seconds, args.connections, args.wrk_threads,
                   "keepalive" if args.keepalive else "close", "check")


def probe_https(port: int) -> str:
    """Whether a worker can open an HTTPS connection: the admin API's number sync, with "Twilio" at gunicorn's own
    port, ends in a TLS error (502) when it can; gevent patching ssl after the preloaded app imported it breaks
    every TLS context the worker makes (RecursionError, a 500)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request("POST", f"/api/v1/numbers/{quote(SUPPORT_NUMBER)}/sync",
                     headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        response = conn.getresponse()
        body = response.read().decode(errors="replace")
    except OSError as exc:
        return f"no answer ({type(exc).__name__})"
    finally:
        conn.close()
    if response.status == 502 and "cannot reach Twilio" in body:
        return "works"
    return f"broken (HTTP {response.status})"


def redis_clients(redis_url: str) -> int:
    """Clients connected to Redis now (gunicorn's workers, and this one asking)."""
    with redis.Redis.from_url(redis_url) as client:
        return int(client.info("clients")["connected_clients"])


def wrk_load(server: Server, requests_file: Path, args: argparse.Namespace) -> Load:
    offset, pids = server.log_size(), server.pids()
    cpu_before = cpu_seconds(pids)
    raw = wrk(server.port, requests_file, args.seconds, args)
    cpu = cpu_seconds(pids) - cpu_before
    requests = int(raw["requests"])
    return Load(rps=requests / (raw["duration_us"] / 1e6), p50_ms=raw["p50_us"] / 1000, p99_ms=raw["p99_us"] / 1000,
                requests=requests, failed=int(raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]),
                non_2xx=int(raw["status"]), bad=int(raw["bad"]),
                unanswered=max(0, int(raw["sent"]) - requests), repeated=int(raw["repeated"]),
                logged=server.failures_since(offset), cpu_ms=cpu * 1000 / requests if requests else 0.0)


def gunicorn_args(name: str, args: argparse.Namespace) -> list[str]:
    extra = ["--worker-class", "gevent" if name.startswith("gevent") else name]
    if args.workers:
        extra += ["--workers", str(args.workers)]
    if args.threads and name == "gthread":
        extra += ["--threads", str(args.threads)]
    if args.worker_connections:
        extra += ["--worker-connections", str(args.worker_connections)]
    return extra


def describe_settings(name: str, args: argparse.Namespace, defaults: dict[str, Any]) -> str:
    workers = args.workers or defaults["workers"]
    if name == "gthread":
        text = f"{workers} x {args.threads or defaults['threads']} threads"
    else:
        text = f"{workers} x {args.worker_connections or defaults['worker_connections'] or 1000} connections"
    return f"{text}, pool {args.redis_max_connections or 'as is'}"


async def run_class(index: int, name: str, port: int, context: dict[str, Any], args: argparse.Namespace) -> Outcome:
    tmp: Path = context["tmp"]
    load_at_start = os.getloadavg()[0]
    base, incoming_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}{PATH}"
    files = [tmp / f"{name}-{phase}.txt" for phase in ("warmup", "without", "with")]
    for series, (path, seconds) in enumerate(zip(files, (args.warmup, args.seconds, args.seconds), strict=True)):
        write_requests(path, incoming_url, max(1000, int(seconds * REQUESTS_PER_SECOND)), series=index * 10 + series)
    conf = GUNICORN_CONF
    if name == "gevent-early":
        conf = tmp / "gunicorn-early-patch.conf.py"
        conf.write_text(EARLY_PATCH_CONF.format(conf=str(GUNICORN_CONF)))
    log = tmp / f"{name}.log"
    # WEB_WORKER_CLASS: for a gunicorn.conf.py that reads its worker class, and patches for gevent, from there.
    env = {**context["env"], "WEB_WORKER_CLASS": "gthread" if name == "gthread" else "gevent",
           # The admin API's number sync reaches "Twilio" here: gunicorn itself, which speaks no TLS.
           "PUBLIC_BASE_URL": base, "TWILIO_API_BASE_URL": f"https://127.0.0.1:{port}"}
    with Server(port, env, log, conf, gunicorn_args(name, args)) as server:
        check_real(port, incoming_url)
        https = await asyncio.to_thread(probe_https, port)
        if len(context["cookies"]) < len(context["agents"]):  # desk sessions live in Redis: good for every class
            began, agents = time.perf_counter(), context["agents"][:len(context["agents"]) - len(context["cookies"])]
            context["cookies"] = [*await sign_in_all(base, agents), *context["cookies"]]
            print(f"  signed {len(agents)} agents in over HTTP in {time.perf_counter() - began:.1f} s")
        if args.warmup > 0:
            await asyncio.to_thread(wrk, port, files[0], args.warmup, args)
        cpu_before = cpu_seconds(server.pids())
        outcome = Outcome(name, describe_settings(name, args, context["defaults"]),
                          await asyncio.to_thread(wrk_load, server, files[1], args),
                          workers=args.workers or context["defaults"]["workers"], https=https)
        outcome.redis_clients_without = redis_clients(context["redis_url"])
        print(f"  {name}: /voice/incoming without desks: p99 {outcome.without.p99_ms:.1f} ms")

        desks = [Desk(a, c) for a, c in zip(context["agents"], context["cookies"], strict=True)]
        outcome.desks = len(desks)
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                        timeout=aiohttp.ClientTimeout(total=None, sock_connect=args.timeout))
        tasks = [asyncio.create_task(hold(session, base, d)) for d in desks]
        try:
            began = progress = time.perf_counter()
            deadline, count = began + args.connect_timeout, 0
            # Until every desk is connected or refused, the time is up, or none has connected for 3 s.
            while time.perf_counter() < min(deadline, progress + 3) and not all(d.connected or d.ended for d in desks):
                await asyncio.sleep(0.02)
                if sum(d.connected for d in desks) > count:
                    count, progress = sum(d.connected for d in desks), time.perf_counter()
            outcome.connected = sum(d.connected for d in desks)
            outcome.connect_s = time.perf_counter() - began
            print(f"  {name}: {outcome.connected}/{len(desks)} desks connected in {outcome.connect_s:.1f} s")
            live = [d for d in desks if d.connected]
            if live:
                outcome.calls = make_calls(base, live, args.calls, series=index * 10 + 5)
                await fire(outcome.calls, args.call_rate, args.timeout)
            outcome.loaded = await asyncio.to_thread(wrk_load, server, files[2], args)
            outcome.still_open = sum(d.connected and not d.ended for d in desks)
            outcome.rss_mb = server.workers_rss_mb()
            outcome.redis_clients = redis_clients(context["redis_url"])
            outcome.cpu_s = cpu_seconds(server.pids()) - cpu_before
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await session.close()
        outcome.boots, outcome.notes = server.log_findings()
        outcome.load = (load_at_start, os.getloadavg()[0])
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, args.logs / log.name)
    return outcome


