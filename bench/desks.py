"""Desks for bench/screenpop.py: agents seeded with desk sessions, sign-ins, event streams and whisper webhooks."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

import aiohttp
import redis
from twilio.request_validator import RequestValidator
from yarl import URL

from bench.webhooks import ACCOUNT_SID, API_KEY, AUTH_TOKEN, CUSTOMERS, SUPPORT_NUMBER
from bench.webhooks import seed as seed_callers

SECRET_KEY = "bench-desk-secret-0123456789abcdef"
PASSWORD = "bench desk password 1"
COOKIE = "threadline"  # the session cookie's name without an https PUBLIC_BASE_URL
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
SIGN_INS_AT_ONCE = 4  # argon2 takes 64 MiB and ~0.2 s a sign-in
NUMBER_AGENTS = 500  # the most agents a number lists

def agent_id(i: int) -> str:
    return f"desk-{i:04d}"


def seed(redis_url: str, desks: int, signed_in: int) -> list[str]:
    """bench/webhooks' support number, agent and callers' threads, plus one available agent per desk (the first
    ones on the number), each with a desk password; desk session cookies for all but the first signed_in agents,
    who sign in over HTTP."""
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
    # A number lists at most NUMBER_AGENTS; a whisper pops the desk of whichever agent its URL names.
    config = NumberConfig.model_validate({**number.model_dump(include=set(NumberConfig.model_fields)),
                                          "agents": ["sam", *ids[:NUMBER_AGENTS - 1]]})
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

