"""GET /metrics: Prometheus's text, parsed with prometheus_client's own parser, after the flows that make the numbers;
one process's in these tests, every Procfile process's summed in the full run; and the token that guards it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bench.callbacks import SUPPORT_NUMBER, phone_of, thread_body
from bench.chaos import seed_line
from bench.chaos_rig import Rig, api_headers
from callbacks.clock import Clock
from callbacks.schemas import State
from context.events import Outbox, get_event
from core.redis_server import EmbeddedRedis
from tests.support.api import AUTH
from tests.support.callbacks import ask, callback, work
from tests.support.carrier import AGENT, CUSTOMER, OUTLASTS_AGENT, TALK, wait_until
from tests.support.desk import EventStream, sign_in_over_http, with_password
from tests.support.events import SECRET, Receiver, work_until
from tests.support.outage import redis_away
from tests.support.voice import Line

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by name and labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(get: Any, **headers: str) -> Samples:
    response = get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return parse(response.text)


def grown(before: Samples, after: Samples) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """What each sample gained between two scrapes."""
    return {key: after[key] - before.get(key, 0.0) for key in after if after[key] != before.get(key, 0.0)}


@pytest.fixture
def cb_line(cb_line: Line) -> Line:
    with_password(cb_line.app)
    return cb_line


def test_after_a_matched_call_a_callback_and_an_undeliverable_event_the_metrics_have_counted_them(
        cb_line: Line, receiver: tuple[Receiver, str]) -> None:
    get = cb_line.app.test_client().get
    before = scrape(lambda path, headers: requests.get(cb_line.url + path, headers=headers, timeout=10))
    desk = EventStream(sign_in_over_http(cb_line.url), cb_line.url)
    assert desk.frame() == ": connected"

    # A callback whose dial job was lost: the clock's sweep queues it again, the worker dials, the customer answers.
    cb_line.script(CUSTOMER, keys=["1"], hangup_after=OUTLASTS_AGENT)
    cb_line.script(AGENT, keys=["1"], hangup_after=TALK)
    asked = ask(cb_line).get_json()
    clock = Clock(cb_line.app)
    with cb_line.app.app_context():
        clock.tick(time.time())  # the clock queues its dial job...
        cb_line.app.extensions["threadline.queue"].empty()  # ...which is lost
        time.sleep(cb_line.app.config["SWEEP_GRACE_SECONDS"] + 0.1)
        clock.tick(time.time())
    work(cb_line)
    wait_until(lambda: callback(cb_line, asked["id"]).state == State.completed, message="the callback to complete")
    # Then the customer calls in, is matched to their thread, says yes and talks with the agent.
    cb_line.script(CUSTOMER, keys=["1"], hangup_after=OUTLASTS_AGENT)
    cb_line.finished(cb_line.call_in(CUSTOMER))
    # And an event the platform refuses until its last retry.
    state, url = receiver
    state.always_fail = True
    app = cb_line.app
    box = Outbox(app.extensions["threadline.redis"], app.extensions["threadline.queue"], url, SECRET,
                 retry_intervals=[0])
    event = box.emit("t-1", "call.completed", {"duration": 1}, "Your call ended.")
    work_until(box.queue, lambda: getattr(get_event(app.extensions["threadline.redis"], event.id), "delivery", "")
               == "undeliverable")

    during = scrape(get)
    assert value(during, "threadline_desk_streams_open") == value(before, "threadline_desk_streams_open") + 1
    desk.close()
    gained = grown(before, during)

    def gain(name: str, **labels: str) -> float:
        return gained.get((name, tuple(sorted(labels.items()))), 0.0)

    assert gain("threadline_inbound_calls_total", outcome="matched") == 1
    assert gain("threadline_webhook_requests_total", endpoint="/voice/incoming", status="200") == 1
    assert gain("threadline_webhook_requests_total", endpoint="/voice/confirm", status="200") == 1
    assert gain("threadline_webhook_duration_seconds_count", endpoint="/voice/incoming", status="200") == 1
    assert gain("threadline_webhook_duration_seconds_sum", endpoint="/voice/incoming", status="200") > 0
    assert gain("threadline_webhook_requests_total", endpoint="/voice/callback/answer", status="200") == 1
    for entered in ("scheduled", "dialing", "in_call", "completed"):
        assert gain("threadline_callbacks_total", state=entered) >= 1, entered
    assert gain("threadline_callback_attempts_total", outcome="completed") == 1
    assert gain("threadline_callback_dial_lateness_seconds_count") == 1
    assert gain("threadline_sweep_recoveries_total", kind="requeued") == 1
    assert gain("threadline_events_undeliverable_total") == 1
    # No phone number, thread id or call SID is ever a label value.
    labels = {v for (_, pairs) in during for _, v in pairs}
    assert not {v for v in labels if "+1415" in v or v.startswith(("CA", "t-")) or "1415" in v}, labels


def test_redis_errors_are_counted(make_app: Any, server: EmbeddedRedis) -> None:
    client = make_app(REDIS_URL=server.url, REDIS_TIMEOUT_SECONDS=0.5).test_client()
    before = scrape(client.get)
    with redis_away(server):
        assert client.get("/api/v1/threads/t-1", headers=AUTH).status_code == 503
    after = scrape(client.get)
    assert value(after, "threadline_redis_errors_total", error="ConnectionError") - value(
        before, "threadline_redis_errors_total", error="ConnectionError") == 1


def test_with_a_token_metrics_are_for_its_bearer_only(make_app: Any) -> None:
    client = make_app(THREADLINE_METRICS_TOKEN="metrics-token-0123456789").test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic metrics-token-0123456789"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == 'Bearer realm="threadline"'
        assert refused.get_json()["error"]["code"] == "unauthorized"
    assert "threadline_webhook_requests_total" in client.get(
        "/metrics", headers={"Authorization": "Bearer metrics-token-0123456789"}).get_data(as_text=True)


def test_without_a_token_metrics_are_open_and_the_web_says_so(make_app: Any) -> None:
    from core import config

    assert make_app().test_client().get("/metrics").status_code == 200
    assert "THREADLINE_METRICS_TOKEN is not set: /metrics is open to anyone who can reach the web process" in (
        config.web_warnings(config.load({})))
    assert not [w for w in config.web_warnings(config.load({"THREADLINE_METRICS_TOKEN": "x"})) if "METRICS" in w]


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    """The Procfile's processes (gunicorn with two workers, one RQ worker, the clock) sharing a metrics directory."""
    monkeypatch.setenv("WEB_CONCURRENCY", "2")
    rig = Rig(tmp_path, rate=1, workers=1)  # one call a second: callbacks due together wait for their slots
    try:
        rig.start((SUPPORT_NUMBER,))
        for name, setting in rig.env.items():
            monkeypatch.setenv(name, setting)
        yield rig
    finally:
        rig.stop()


def test_the_web_sums_every_process_metrics(rig: Rig) -> None:
    from app import create_app
    from carrier.control import script_from
    from context.schemas import ThreadIn

    app = create_app()  # this process writes what the API would; the Procfile's processes do the rest
    seed_line(app, rig, 1440)
    customers, due = 3, (datetime.now(UTC) + timedelta(seconds=3)).isoformat(timespec="milliseconds")
    for i in range(customers):
        app.extensions["threadline.threads"].put(f"m-{i}", ThreadIn.model_validate(thread_body(i)))
        with rig.carrier.state.lock:
            rig.carrier.state.phones[phone_of(i)] = script_from({"answer": "human", "keys": ["1"], "hangup_after": 2})
        response = requests.post(f"{rig.web_url}/api/v1/threads/m-{i}/callbacks", headers=api_headers(), timeout=10,
                                 json={"when": due, "number": SUPPORT_NUMBER})  # queued by the clock when due
        assert response.status_code == 201, response.text
    # Webhooks to both gunicorn workers: unsigned, so each is refused, and counted by the worker that refused it.
    with ThreadPoolExecutor(16) as pool:
        refused = list(pool.map(lambda _: requests.post(f"{rig.web_url}/voice/incoming", timeout=10).status_code,
                                range(200)))
    assert set(refused) == {403}

    def get(path: str, headers: dict[str, str]) -> requests.Response:
        return requests.get(rig.web_url + path, headers=headers, timeout=10)

    def done() -> Samples | None:
        samples = scrape(get)
        return samples if value(samples, "threadline_callback_dial_lateness_seconds_count") >= customers else None

    samples = wait_until(done, timeout=60, message="every callback counted dialled")
    # Counted in the RQ worker (the claim, the dial's lateness) and in the clock (what it queued), shown by the web.
    assert value(samples, "threadline_callbacks_total", state="dialing") == customers
    assert value(samples, "threadline_callback_dial_lateness_seconds_count") == customers
    assert value(samples, "threadline_clock_queued_total", kind="callbacks") >= customers
    assert value(samples, "threadline_dial_rate_limit_waits_total") >= customers - 1
    assert value(samples, "threadline_dial_rate_limit_wait_seconds_total") > 0.5
    assert value(samples, "threadline_webhook_requests_total", endpoint="/voice/incoming", status="403") == 200
    # Both gunicorn workers answered some of them, and every scrape, whichever worker serves it, shows the sum.
    [web_pid] = rig.processes.pids("web")
    web = psutil.Process(web_pid)
    workers = [child.pid for child in web.children()]
    assert len(workers) == 2
    files = {path.name for path in (rig.tmp / "metrics").glob("counter_*.db")}
    assert {f"counter_{pid}.db" for pid in workers} <= files, files
    for _ in range(6):
        again = scrape(get)
        assert value(again, "threadline_webhook_requests_total", endpoint="/voice/incoming", status="403") == 200
