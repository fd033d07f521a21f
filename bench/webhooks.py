"""Inbound-call webhook under gunicorn vs a minimal peer (signature check, one Redis GET, static TwiML) and a bare
Flask TwiML endpoint: requests/s and p50/p99 latency with wrk."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import runpy
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import redis
from flask import Flask, Response, abort, request
from twilio.request_validator import RequestValidator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import GUNICORN_CONF, Gunicorn, cpu_seconds, entry, free_ports, require_wrk, run_wrk
from core import keys
from core.redis_server import EmbeddedRedis

PATH = "/voice/incoming"
PUBLIC_BASE_URL = "https://support.example.com"  # behind its proxy, as on Twilio: what Twilio reaches and signs
SUPPORT_NUMBER = "+14155550100"
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
API_KEY = "bench-key-0123456789"
CUSTOMERS = 1000
MESSAGES_PER_THREAD = 6
# Generous: more than either server manages on a small machine, so no measured request is a replay.
REQUESTS_PER_SECOND = 8000
AIM_RATIO, AIM_P99_MS = 0.5, 40.0  # issue 15: at least half the bare endpoint, p99 under 40 ms
# The bare endpoint's answer: a fixed greeting of the size and shape the real one gives.
BARE_TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/voice/confirm?thread=thread-7" '
    'actionOnEmptyResult="false" finishOnKey="" hints="yes, no" input="dtmf speech" language="en-US" method="POST" '
    'numDigits="1" timeout="5"><Say language="en-US" voice="Polly.Joanna">Hi Jane. Is this about App crashes at login '
    '(case 7)? Press 1 or say yes, 2 or say no.</Say><Say language="en-US" voice="Polly.Joanna">Your last message: '
    "Reinstalled, it still crashes right after the login screen.</Say></Gather>"
    '<Redirect method="POST">/voice/code</Redirect></Response>')


def bare_app() -> Flask:
    """The baseline gunicorn serves: no Redis, no signature check, the same fixed TwiML for every call."""
    app = Flask("bare")

    @app.post(PATH)
    def incoming() -> Response:
        return Response(BARE_TWIML, mimetype="text/xml")

    return app


def minimal_app() -> Flask:
    """The peer a webhook of this kind is measured against: what any Twilio app must do at least, the signature
    checked with twilio's RequestValidator, one Redis GET (the dialled number's configuration), static TwiML."""
    app = Flask("minimal")
    store = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    validator, url = RequestValidator(AUTH_TOKEN), f"{PUBLIC_BASE_URL}{PATH}"

    @app.post(PATH)
    def incoming() -> Response:
        if not validator.validate(url, request.form, request.headers.get("X-Twilio-Signature", "")):
            abort(403)
        if store.get(keys.number(request.form.get("To", ""))) is None:
            abort(404)
        return Response(BARE_TWIML, mimetype="text/xml")

    return app


def phone_of(i: int) -> str:
    return f"+1415200{i:04d}"


def thread_body(i: int) -> dict[str, Any]:
    start = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=i)
    texts = ["The app closes as soon as I log in", "Sorry about that! Which version are you on?",
             "3.2.1 on an iPhone 14", "Thanks. Could you try reinstalling?",
             "Reinstalled, it still crashes right after the login screen", "Noted, we are looking into it."]
    messages = [{"id": f"m{n}", "author": "agent" if n % 2 else "customer", "name": "Sam" if n % 2 else "Jane",
                 "text": texts[n % len(texts)], "sent_at": (start + timedelta(minutes=n)).isoformat()}
                for n in range(MESSAGES_PER_THREAD)]
    return {"subject": f"App crashes at login (case {i})", "status": "open",
            "customer": {"id": f"u-{i}", "name": "Jane Doe", "phone": phone_of(i), "email": f"jane{i}@example.com",
                         "locale": "en-US", "time_zone": "America/Los_Angeles"},
            "device": {"platform": "iOS", "os_version": "17.2", "app_version": "3.2.1", "model": "iPhone 14"},
            "metadata": {"plan": "pro"}, "messages": messages,
            "logs": [{"at": start.isoformat(), "level": "error", "message": "NullPointerException in LoginView"}]}


def seed(redis_url: str) -> None:
    """A support number, an available agent and one open thread for each of CUSTOMERS callers, via the app's stores."""
    from app import create_app
    from context.schemas import ThreadIn
    from directory.models import AgentConfig, NumberConfig

    app = create_app({"REDIS_URL": redis_url, "THREADLINE_API_KEYS": [API_KEY]})
    now = datetime.now(UTC)
    app.extensions["threadline.agents"].put(
        "sam", AgentConfig.model_validate({"name": "Sam", "phone": "+14155550777", "status": "available"}), now)
    app.extensions["threadline.numbers"].put(SUPPORT_NUMBER, NumberConfig.model_validate(
        {"label": "Support", "brand": "Acme", "time_zone": "America/Los_Angeles", "agents": ["sam"]}), now)
    threads = app.extensions["threadline.threads"]
    for i in range(CUSTOMERS):
        threads.put(f"thread-{i}", ThreadIn.model_validate(thread_body(i)))
    app.extensions["threadline.redis"].close()


def call_params(sid: str, caller: str) -> dict[str, str]:
    return {"CallSid": sid, "AccountSid": ACCOUNT_SID, "From": caller, "To": SUPPORT_NUMBER,
            "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01"}


def write_requests(path: Path, url: str, count: int, series: int) -> None:
    """count distinct signed webhooks, one per line as body TAB signature; series keeps files' CallSids apart."""
    validator = RequestValidator(AUTH_TOKEN)
    with path.open("w") as out:
        for i in range(count):
            params = call_params(f"CA{series:08x}{i:024x}", phone_of(i % CUSTOMERS))
            out.write(f"{urlencode(params)}\t{validator.compute_signature(url, params)}\n")


def post(port: int, params: dict[str, str], signature: str = "") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", PATH, urlencode(params), {"Content-Type": "application/x-www-form-urlencoded",
                                                        "X-Twilio-Signature": signature})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    errors: int
    repeated: int
    cpu_ms_per_request: float
    redis_cpu_ms_per_request: float
    raw: dict[str, float]


def measure(server: Gunicorn, redis_pid: int, files: tuple[Path, Path], args: argparse.Namespace) -> Result:
    warmup_file, requests_file = files
    url = f"http://127.0.0.1:{server.port}{PATH}"
    if args.warmup > 0:
        run_wrk(url, warmup_file, args.warmup, args.connections, args.threads)
    pids = server.pids()
    cpu_before, redis_before = cpu_seconds(pids), cpu_seconds([redis_pid])
    raw = run_wrk(url, requests_file, args.seconds, args.connections, args.threads)
    cpu, redis_cpu = cpu_seconds(pids) - cpu_before, cpu_seconds([redis_pid]) - redis_before
    requests = int(raw["requests"])
    per_request = 1000 / requests if requests else 0.0
    errors = int(raw["connect"] + raw["read"] + raw["write"] + raw["timeout"])
    return Result(rps=requests / (raw["duration_us"] / 1e6), p50_ms=raw["p50_us"] / 1000, p99_ms=raw["p99_us"] / 1000,
                  requests=requests, non_2xx=int(raw["status"]), errors=errors, repeated=int(raw["repeated"]),
                  cpu_ms_per_request=cpu * per_request, redis_cpu_ms_per_request=redis_cpu * per_request, raw=raw)


def check_real(port: int, url: str) -> None:
    """One signed call from a known customer must be greeted by name with their thread, or the run means nothing."""
    params = call_params("CA" + "f" * 32, phone_of(0))
    status, body = post(port, params, RequestValidator(AUTH_TOKEN).compute_signature(url, params))
    if status != 200 or "thread=thread-0" not in body or "Jane" not in body:
        raise SystemExit(f"the real webhook did not greet a known caller (HTTP {status}):\n{body[:500]}")


def check_minimal(port: int, url: str) -> None:
    params = call_params("CA" + "d" * 32, phone_of(0))
    status, body = post(port, params, RequestValidator(AUTH_TOKEN).compute_signature(url, params))
    if status != 200 or body != BARE_TWIML:
        raise SystemExit(f"the minimal endpoint answered HTTP {status}:\n{body[:500]}")


def check_bare(port: int) -> None:
    status, body = post(port, call_params("CA" + "e" * 32, phone_of(0)))
    if status != 200 or body != BARE_TWIML:
        raise SystemExit(f"the bare endpoint answered HTTP {status}:\n{body[:500]}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15, help="load per endpoint, in seconds (default 15)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--threads", type=int, default=1,
                        help="wrk threads (default 1: wrk shares the machine's CPUs with gunicorn)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="times to measure the three endpoints in turn; figures are their medians (default 1)")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured load before each run, seconds (default 2)")
    parser.add_argument("--requests", type=int, default=0,
                        help=f"distinct signed calls to generate (default {REQUESTS_PER_SECOND:,} per second of load)")
    args = parser.parse_args()
    if (args.seconds <= 0 or args.connections < 1 or args.threads < 1 or args.rounds < 1 or args.warmup < 0
            or args.requests < 0):
        parser.error("--seconds, --connections, --threads and --rounds must be positive; --warmup and --requests not "
                     "negative")
    if args.connections < args.threads:
        parser.error("wrk needs at least one connection per thread")
    args.requests = args.requests or int(args.seconds * REQUESTS_PER_SECOND)
    return args


ENDPOINTS = (("real POST /voice/incoming", "real"), ("minimal signed+GET", "minimal"), ("bare fixed TwiML", "bare"))


def main() -> None:
    args = parse_args()
    require_wrk()
    env = {k: v for k, v in os.environ.items() if k not in ("PUBLIC_BASE_URL", "TWILIO_EDGE", "TWILIO_REGION")}
    settings = runpy.run_path(str(GUNICORN_CONF))
    real_port, minimal_port, bare_port = free_ports(3)
    real_url = f"{PUBLIC_BASE_URL}{PATH}"  # the URL Twilio would sign; the bare app ignores it
    rounds: list[dict[str, Result]] = []
    loads: list[str] = []

    with tempfile.TemporaryDirectory(prefix="tl-bench-") as tmp_name, contextlib.ExitStack() as servers:
        tmp = Path(tmp_name)
        redis_server = EmbeddedRedis(tmp / "redis", appendonly=False)
        servers.callback(redis_server.stop)
        redis_url = redis_server.start()
        assert redis_server.process is not None
        redis_pid = redis_server.process.pid
        began = time.perf_counter()
        seed(redis_url)
        warmup = tmp / "warmup.txt"
        write_requests(warmup, real_url, max(1000, int(args.warmup * REQUESTS_PER_SECOND)), series=1)
        print(f"gunicorn: {GUNICORN_CONF.name} as the Procfile runs it ({settings['worker_class']}, "
              f"{settings['workers']} workers x {settings['threads']} threads, access log to a file); "
              f"{os.cpu_count()} CPUs shared with wrk")
        print(f"wrk: {args.threads} thread(s), {args.connections} connections, {args.seconds:g} s per endpoint "
              f"after {args.warmup:g} s warm-up, {args.rounds} round(s) taking the endpoints in turn; "
              f"{args.requests:,} distinct signed calls a round from {CUSTOMERS:,} callers with an open thread each "
              f"(set up in {time.perf_counter() - began:.1f} s)\n")

        real_env = {**env, "REDIS_URL": redis_url, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                    "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "THREADLINE_API_KEYS": API_KEY,
                    "PUBLIC_BASE_URL": PUBLIC_BASE_URL}
        real = servers.enter_context(Gunicorn("app:create_app()", real_port, real_env, tmp / "real.log"))
        minimal = servers.enter_context(Gunicorn("bench.webhooks:minimal_app()", minimal_port,
                                                 {**env, "REDIS_URL": redis_url}, tmp / "minimal.log"))
        bare = servers.enter_context(Gunicorn("bench.webhooks:bare_app()", bare_port, env, tmp / "bare.log"))
        check_real(real_port, real_url)
        check_minimal(minimal_port, real_url)
        check_bare(bare_port)
        for n in range(args.rounds):
            requests_file = tmp / f"requests-{n}.txt"  # new CallSids each round: none is a replay
            write_requests(requests_file, real_url, args.requests, series=2 + n)
            files = (warmup, requests_file)
            # Idle between their turns, so each endpoint meets the machine's load as the others do, round by round.
            rounds.append({key: measure(server, redis_pid, files, args)
                           for key, server in (("real", real), ("minimal", minimal), ("bare", bare))})
            loads.append(" ".join(f"{x:.2f}" for x in os.getloadavg()))
        real_log = real.tail()
    report(rounds, loads, args, real_log)


def report(rounds: list[dict[str, Result]], loads: list[str], args: argparse.Namespace, real_log: str) -> None:
    """Each round's figures with the load average after it; the ratios of the median throughputs."""
    print(f"{'endpoint':<27}{'requests/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}{'non-2xx':>9}{'errors':>8}"
          f"{'CPU ms/request: gunicorn':>26}{'redis':>7}")
    for n, (results, load) in enumerate(zip(rounds, loads, strict=True), start=1):
        if len(rounds) > 1:
            print(f"round {n} (load average after it: {load})")
        for name, key in ENDPOINTS:
            r = results[key]
            print(f"{name:<27}{r.rps:>11,.0f}{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}{r.requests:>10,}{r.non_2xx:>9}"
                  f"{r.errors:>8}{r.cpu_ms_per_request:>26.2f}{r.redis_cpu_ms_per_request:>7.2f}")
    rps = {key: statistics.median(results[key].rps for results in rounds) for _, key in ENDPOINTS}
    p99 = statistics.median(results["real"].p99_ms for results in rounds)
    ratio = rps["real"] / rps["bare"] if rps["bare"] else 0.0
    print(f"\nload average: {loads[-1]}" if len(rounds) == 1 else "\nmedians over the rounds:")
    print(f"Threadline = {rps['real'] / rps['minimal'] if rps['minimal'] else 0.0:.2f} x minimal, {ratio:.2f} x bare "
          f"(minimal = {rps['minimal'] / rps['bare'] if rps['bare'] else 0.0:.2f} x bare)")
    print(f"throughput real/bare: {ratio:.2f} (aim >= {AIM_RATIO}: {'met' if ratio >= AIM_RATIO else 'not met'})")
    print(f"real p99 at {args.connections} connections: {p99:.1f} ms "
          f"(aim < {AIM_P99_MS:g} ms: {'met' if p99 < AIM_P99_MS else 'not met'})")
    for results in rounds:
        real = results["real"]
        if real.repeated:
            print(f"warning: the real webhook was sent {real.repeated:,} repeated calls, answered from its replay "
                  f"cache; rerun with --requests above {int(real.raw['sent']):,}")
        if real.non_2xx or real.errors:
            print(f"warning: the real webhook had {real.non_2xx} non-2xx answers and {real.errors} socket errors "
                  f"(a 403 means the signed URL did not match); the end of its log:\n{real_log}")
        for name, key in ENDPOINTS[1:]:
            if results[key].non_2xx or results[key].errors:
                print(f"warning: {name} had {results[key].non_2xx} non-2xx answers and {results[key].errors} "
                      f"socket errors")


if __name__ == "__main__":
    entry(main, "gunicorn and Redis")
