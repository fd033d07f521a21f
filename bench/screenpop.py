"""Screen pops with hundreds of desks open, per gunicorn worker class: whisper webhook -> SSE frame latency, and
the inbound-call webhook's p99 with and without the desks' event streams open.

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
    .venv/bin/python bench/screenpop.py --worker-class gevent-early --redis-max-connections 1000

gevent-early patches the standard library before the app is preloaded; --redis-max-connections sets the app's
Redis pool size per process through REDIS_URL (every open stream holds one pub/sub connection from it).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import redis
from twilio.request_validator import RequestValidator
from yarl import URL

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.webhooks import (
    ACCOUNT_SID,
    API_KEY,
    AUTH_TOKEN,
    CUSTOMERS,
    GUNICORN,
    GUNICORN_CONF,
    PATH,
    SUPPORT_NUMBER,
    Gunicorn,
    check_real,
    cpu_seconds,
    free_ports,
    write_requests,
)
from bench.webhooks import seed as seed_callers
from core.redis_server import EmbeddedRedis, die_with_parent

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "wrk_requests.lua"
ADMIN_KEY = "bench-admin-key-0123456789"
SECRET_KEY = "bench-desk-secret-0123456789abcdef"
PASSWORD = "bench desk password 1"
COOKIE = "threadline"  # the session cookie's name without an https PUBLIC_BASE_URL
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
MAX_DESKS = 499  # a number lists at most 500 agents; "sam" is one
SIGN_INS_AT_ONCE = 4  # argon2 takes 64 MiB and ~0.2 s a sign-in
REQUESTS_PER_SECOND = 5000  # signed /voice/incoming calls generated per second of wrk load (none is a replay)
CLASSES = ("gthread", "gevent", "gevent-early")
# "gevent-early": the project's settings, read after gevent has patched the standard library in the master, before
# the preloaded app imports socket, ssl and threading (as a monkey.patch_all() at the top of gunicorn.conf.py would).
EARLY_PATCH_CONF = '''"""gunicorn.conf.py after gevent's monkey.patch_all(), for bench/screenpop.py."""
from gevent import monkey

monkey.patch_all()

import runpy  # noqa: E402

globals().update({{k: v for k, v in runpy.run_path({conf!r}).items() if not k.startswith("_")}})
'''
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Warning|Exit)\b")


def agent_id(i: int) -> str:
    return f"desk-{i:03d}"


def seed(redis_url: str, desks: int, signed_in: int) -> list[str]:
    """bench/webhooks' support number, agent and callers' threads, plus one available agent per desk, on the
    number, each with a desk password; desk session cookies for all but the first signed_in agents, who sign in
    over HTTP."""
    from app import create_app
    from core.keys import agent_password
    from desk.auth import SESSION_LIFETIME
    from desk.passwords import Passwords
    from desk.sessions import DeskSessions
    from directory.models import AgentConfig, NumberConfig

    seed_callers(redis_url)
    app = create_app({"REDIS_URL": redis_url, "THREADLINE_API_KEYS": [API_KEY], "SECRET_KEY": SECRET_KEY})
    now = datetime.now(UTC)
    agents, numbers = app.extensions["threadline.agents"], app.extensions["threadline.numbers"]
    ids = [agent_id(i) for i in range(desks)]
    for i, agent in enumerate(ids):
        agents.put(agent, AgentConfig.model_validate(
            {"name": f"Agent {i}", "phone": f"+1415300{i:04d}", "status": "available"}), now)
    number = numbers.get(SUPPORT_NUMBER)
    assert number is not None
    config = NumberConfig.model_validate({**number.model_dump(include=set(NumberConfig.model_fields)),
                                          "agents": ["sam", *ids]})
    numbers.put(SUPPORT_NUMBER, config, now)
    # One argon2 hash through the app's store, copied to the others: the same password, without 0.2 s per agent.
    client: redis.Redis = app.extensions["threadline.redis"]
    Passwords(client).set(ids[0], PASSWORD)
    hashed = client.get(agent_password(ids[0]))
    client.mset({agent_password(a): hashed for a in ids})
    # What a sign-in leaves, without its argon2 check (0.2 s of CPU each): a desk session in Redis and the cookie
    # naming it, signed by the app's own session serializer.
    sessions, serializer = DeskSessions(client), app.session_interface.get_signing_serializer(app)
    assert serializer is not None
    lifetime = int(SESSION_LIFETIME.total_seconds())
    cookies = []
    for agent in ids[signed_in:]:
        session = {"agent_id": agent, "sid": sessions.start(agent, lifetime), "csrf_token": "-", "_permanent": True}
        cookies.append(f"{COOKIE}={serializer.dumps(session)}")
    client.close()
    return cookies


class Server(Gunicorn):
    """bench/webhooks' gunicorn with settings overridden on its command line, and a quick stop."""

    def __init__(self, port: int, env: dict[str, str], log: Path, conf: Path, extra: list[str]) -> None:
        super().__init__("app:create_app()", port, env, log)
        self.conf, self.extra = conf, extra

    def __enter__(self) -> Server:
        env = {**self.env, "HOST": "127.0.0.1", "PORT": str(self.port)}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(GUNICORN), "-c", str(self.conf), *self.extra, self.spec], cwd=ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=die_with_parent)
        try:
            self._wait_ready(self.process)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGINT (quick shutdown: open event streams would hold a graceful one for its whole timeout), then
        SIGKILL to the process group."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            pass
        self.process = None

    def workers_rss_mb(self) -> float:
        total = 0
        for pid in self.pids()[1:]:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                total += int(re.search(r"^VmRSS:\s+(\d+)", status, re.MULTILINE).group(1))  # type: ignore[union-attr]
            except (OSError, AttributeError):
                pass
        return total / 1024

    def log_size(self) -> int:
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


# --- Desks: sign-in and event streams ------------------------------------------------------------------------------

@dataclass
class Desk:
    agent: str
    cookie: str
    status: int | None = None
    connected: bool = False
    ended: str = ""  # why the stream ended before we closed it
    frames: dict[str, float] = field(default_factory=dict)  # ParentCallSid -> arrival (perf_counter)


def _cookie(response: aiohttp.ClientResponse) -> str:
    morsel = response.cookies.get(COOKIE)
    if morsel is None:
        raise SystemExit(f"no {COOKIE} cookie from {response.method} {response.url.path} (HTTP {response.status})")
    return f"{COOKIE}={morsel.value}"


async def sign_in(session: aiohttp.ClientSession, base: str, agent: str) -> str:
    """The desk's login form, as a browser uses it: its CSRF token, then the form; the signed-in cookie."""
    async with session.get(f"{base}/desk/login", headers=HTML) as response:
        page, cookie = await response.text(), _cookie(response)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if response.status != 200 or not match:
        raise SystemExit(f"GET /desk/login answered HTTP {response.status} without a CSRF token")
    form = {"csrf_token": match.group(1), "agent_id": agent, "password": PASSWORD}
    async with session.post(f"{base}/desk/login", data=form, headers={**HTML, "Cookie": cookie},
                            allow_redirects=False) as response:
        if response.status != 303:
            raise SystemExit(f"signing {agent} in answered HTTP {response.status}:\n{(await response.text())[:300]}")
        return _cookie(response)


async def sign_in_all(base: str, agents: list[str]) -> list[str]:
    gate = asyncio.Semaphore(SIGN_INS_AT_ONCE)

    async def one(agent: str) -> str:
        async with gate:
            return await sign_in(session, base, agent)

    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(),
                                     timeout=aiohttp.ClientTimeout(total=60)) as session:
        return await asyncio.gather(*(one(a) for a in agents))


async def hold(session: aiohttp.ClientSession, base: str, desk: Desk) -> None:
    """One desk's event stream, read until cancelled; every screen_pop frame timestamped on arrival."""
    headers = {"Accept": "text/event-stream", "Cookie": desk.cookie}
    try:
        async with session.get(f"{base}/desk/events", headers=headers) as response:
            desk.status = response.status
            if response.status != 200:
                desk.ended = f"HTTP {response.status}"
                return
            async for line in response.content:
                if line.startswith(b"data: "):
                    arrived = time.perf_counter()
                    desk.frames.setdefault(json.loads(line[6:])["call_sid"], arrived)
                elif line.startswith(b": connected"):
                    desk.connected = True
            desk.ended = "closed by the server"
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        desk.ended = type(exc).__name__


# --- Whispers ------------------------------------------------------------------------------------------------------

@dataclass
class Call:
    desk: Desk
    parent: str
    url: str
    body: str
    signature: str
    sent: float = 0.0
    answered: float | None = None
    status: int | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error


def make_calls(base: str, desks: list[Desk], count: int, series: int) -> list[Call]:
    """count signed whisper webhooks, each for the agent of one connected desk, round robin."""
    validator = RequestValidator(AUTH_TOKEN)
    calls = []
    for i in range(count):
        desk = desks[i % len(desks)]
        parent, leg = f"CA{series:08x}{0:08x}{i:016x}", f"CA{series:08x}{1:08x}{i:016x}"
        query = urlencode({"thread": f"thread-{i % CUSTOMERS}", "agent": desk.agent, "number": SUPPORT_NUMBER})
        url = f"{base}/voice/whisper?{query}"
        params = {"CallSid": leg, "ParentCallSid": parent, "AccountSid": ACCOUNT_SID, "From": SUPPORT_NUMBER,
                  "To": f"+1415300{i % 10000:04d}", "CallStatus": "in-progress", "Direction": "outbound-dial",
                  "ApiVersion": "2010-04-01"}
        calls.append(Call(desk, parent, url, urlencode(params), validator.compute_signature(url, params)))
    return calls


async def whisper(session: aiohttp.ClientSession, call: Call, timeout: float) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": call.signature}
    call.sent = time.perf_counter()
    try:
        async with session.post(URL(call.url, encoded=True), data=call.body, headers=headers,
                                timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            body = await response.read()
            call.answered, call.status = time.perf_counter(), response.status
            if response.status == 200 and b"/voice/whisper-accept" not in body:
                call.error = "apology"  # the app's answer when the webhook failed inside
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        call.error = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__


async def fire(calls: list[Call], rate: float, timeout: float) -> None:
    """Send the calls at a steady rate, each without waiting for the others (Twilio's calls don't queue), then
    wait for their answers and for their frames."""
    connector = aiohttp.TCPConnector(limit=0, force_close=True)  # a connection per webhook, as Twilio's
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar()) as session:
        start, tasks = time.perf_counter(), []
        for i, call in enumerate(calls):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(whisper(session, call, timeout)))
        await asyncio.gather(*tasks)
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline and any(c.ok and c.parent not in c.desk.frames for c in calls):
        await asyncio.sleep(0.01)


# --- One worker class ----------------------------------------------------------------------------------------------

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
    redis_clients: int = 0
    cpu_s: float = 0.0
    https: str = ""
    workers: int = 0
    boots: int = 0
    notes: list[str] = field(default_factory=list)


def run_wrk(port: int, requests_file: Path, seconds: float, args: argparse.Namespace) -> dict[str, float]:
    mode = "keepalive" if args.keepalive else "close"
    cmd = ["wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{seconds:g}s", "--timeout", "5s",
           "-s", str(LUA), f"http://127.0.0.1:{port}{PATH}", "--", str(requests_file), str(args.wrk_threads), mode,
           "check"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    match = re.search(r"^WRK (.*)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not match:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return {k: float(v) for k, v in (pair.split("=") for pair in match.group(1).split())}


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


def wrk_load(server: Server, requests_file: Path, args: argparse.Namespace) -> Load:
    offset = server.log_size()
    raw = run_wrk(server.port, requests_file, args.seconds, args)
    requests = int(raw["requests"])
    return Load(rps=requests / (raw["duration_us"] / 1e6), p50_ms=raw["p50_us"] / 1000, p99_ms=raw["p99_us"] / 1000,
                requests=requests, failed=int(raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]),
                non_2xx=int(raw["status"]), bad=int(raw["bad"]),
                unanswered=max(0, int(raw["sent"]) - requests), repeated=int(raw["repeated"]),
                logged=server.failures_since(offset))


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
            await asyncio.to_thread(run_wrk, port, files[0], args.warmup, args)
        cpu_before = cpu_seconds(server.pids())
        outcome = Outcome(name, describe_settings(name, args, context["defaults"]),
                          await asyncio.to_thread(wrk_load, server, files[1], args),
                          workers=args.workers or context["defaults"]["workers"], https=https)
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
            with redis.Redis.from_url(context["redis_url"]) as client:
                outcome.redis_clients = int(client.info("clients")["connected_clients"])
            outcome.cpu_s = cpu_seconds(server.pids()) - cpu_before
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await session.close()
        outcome.boots, outcome.notes = server.log_findings()
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, args.logs / log.name)
    return outcome


# --- Report --------------------------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.1f}" if values else "-"


def report(outcomes: list[Outcome], args: argparse.Namespace) -> None:
    print(f"\nScreen pops: {args.calls} signed POST /voice/whisper at {args.call_rate:g}/s to agents with an open desk;"
          " a pop is timed from sending the webhook to its screen_pop frame arriving on that agent's stream (ms)")
    print(f"{'worker class':<14}{'workers, Redis pool':<32}{'desks open':>11}{'whispers ok':>12}{'p50':>7}{'p95':>7}"
          f"{'pops':>9}{'pop p50':>9}{'pop p95':>9}{'pop max':>9}")
    for o in outcomes:
        answered = [c.answered - c.sent for c in o.calls if c.ok and c.answered]
        pops = [c.desk.frames[c.parent] - c.sent for c in o.calls if c.parent in c.desk.frames]
        print(f"{o.name:<14}{o.settings:<32}{f'{o.connected}/{o.desks}':>11}{f'{len(answered)}/{args.calls}':>12}"
              f"{ms(answered, 50):>7}{ms(answered, 95):>7}{f'{len(pops)}/{args.calls}':>9}{ms(pops, 50):>9}"
              f"{ms(pops, 95):>9}{ms(pops, 100):>9}")
    connections = "keep-alive" if args.keepalive else "a new connection each"
    print(f"\nInbound-call webhooks: signed POST /voice/incoming from wrk, {args.connections} connections "
          f"({connections}), {args.seconds:g} s; wrk gives up on a request after 5 s; p50/p99 of those answered")
    print(f"{'worker class':<14}{'desk streams open':<19}{'requests/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'answered':>10}"
          f"{'greeted':>10}{'unanswered':>11}{'socket errors':>14}{'app failures':>13}")
    for o in outcomes:
        for label, load in (("none", o.without), (f"{o.connected}/{o.desks}", o.loaded)):
            if load is None:
                continue
            p50, p99 = (f"{load.p50_ms:.1f}", f"{load.p99_ms:.1f}") if load.requests else ("starved", "starved")
            print(f"{o.name:<14}{label:<19}{load.rps:>11,.0f}{p50:>9}{p99:>9}{load.requests:>10,}"
                  f"{load.requests - load.non_2xx - load.bad:>10,}{load.unanswered:>11,}{load.failed:>14,}"
                  f"{load.logged:>13,}")
    print(f"\n{'worker class':<14}{'outbound HTTPS':>16}{'streams open at the end':>24}{'workers RSS MB':>15}"
          f"{'Redis clients':>14}{'gunicorn CPU s':>15}  whisper failures")
    for o in outcomes:
        failures = Counter(c.error or f"HTTP {c.status}" for c in o.calls if not c.ok)
        text = ", ".join(f"{n} {kind}" for kind, n in failures.items()) or "none"
        print(f"{o.name:<14}{o.https:>16}{f'{o.still_open}/{o.connected}':>24}{o.rss_mb:>15.0f}{o.redis_clients:>14}"
              f"{o.cpu_s:>15.1f}  {text if o.calls else 'none sent: no desk connected'}")
    for o in outcomes:
        for load in (o.without, o.loaded):
            if load and load.repeated:
                print(f"warning: {o.name}: wrk sent {load.repeated:,} repeated calls (answered from the replay cache)")
        if o.boots > o.workers:
            print(f"warning: {o.name}: {o.boots} worker boots for {o.workers} workers (a worker died or timed out)")
        for line in o.notes:
            print(f"{o.name} log: {line}")


# --- Main ----------------------------------------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker-class", action="append", choices=CLASSES, dest="classes",
                        help="gunicorn worker class to measure, repeatable (default: gthread, then gevent); "
                             "gevent-early: gevent with the standard library patched before the app is preloaded")
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (default: gunicorn.conf.py's)")
    parser.add_argument("--threads", type=int, default=0, help="gthread threads per worker (default: the config's)")
    parser.add_argument("--worker-connections", type=int, default=0,
                        help="connections per gevent worker (default: gunicorn's, 1000)")
    parser.add_argument("--desks", type=int, default=200, help=f"desk event streams to open (default 200, "
                                                               f"at most {MAX_DESKS}), one agent each")
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
    args.classes = args.classes or ["gthread", "gevent"]
    if not 1 <= args.desks <= MAX_DESKS:
        parser.error(f"--desks must be between 1 and {MAX_DESKS}")
    if min(args.calls, args.call_rate, args.seconds, args.connections, args.wrk_threads, args.connect_timeout,
           args.timeout) <= 0 or min(args.workers, args.threads, args.worker_connections, args.warmup, args.sign_in,
                                                         args.redis_max_connections) < 0:
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
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: sudo apt-get install wrk")
    if any(c.startswith("gevent") for c in args.classes):
        try:
            import gevent  # noqa: F401
        except ImportError:
            raise SystemExit("gevent is not installed: .venv/bin/pip install gevent") from None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on kill as on Ctrl-C
    drop = ("PUBLIC_BASE_URL", "TWILIO_EDGE", "TWILIO_REGION", "GUNICORN_CMD_ARGS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    os.environ["THREADLINE_SECRET_KEY"] = SECRET_KEY  # for the app seeding the data, as for gunicorn's
    defaults = config_defaults()
    began = time.perf_counter()
    outcomes = asyncio.run(run(args, env, defaults))
    report(outcomes, args)
    print(f"\n(total {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        raise SystemExit("interrupted; gunicorn and Redis stopped") from None
