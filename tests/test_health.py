"""Liveness and readiness."""

from __future__ import annotations

import os
import time

from app import create_app
from core.instance import INSTANCE_HEADER
from core.redis_server import EmbeddedRedis
from tests.support.carrier import wait_until
from tests.support.processes import kill, start


def test_readyz_says_why_it_is_not_ready(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.get_json()
    assert (body["status"], body["redis"], body["queue"]) == ("not ready", "ok",
                                                              {"name": "threadline", "jobs": 0, "workers": 0})
    assert body["reasons"] == ["no worker is alive: nothing runs the dial and delivery jobs",
                               "no clock holds the lease: due callbacks are not queued"]


def test_readyz_is_503_when_redis_goes_away(tmp_path):
    server = EmbeddedRedis(tmp_path, appendonly=False)
    app = create_app({"TESTING": True, "REDIS_URL": server.start(), "THREADLINE_API_KEYS": ["k"]})
    client = app.test_client()
    assert client.get("/readyz").get_json()["redis"] == "ok"
    server.stop()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"
    assert response.get_json()["reasons"] == [f"Redis cannot be reached ({server.url})"]
    assert client.get("/healthz").status_code == 200


def test_healthz_echoes_the_run_commands_token_only_to_whoever_knows_it(make_app):
    client = make_app(THREADLINE_INSTANCE="the-token").test_client()
    assert client.get("/healthz", headers={INSTANCE_HEADER: "the-token"}).headers[INSTANCE_HEADER] == "the-token"
    for asked in ({INSTANCE_HEADER: "a-guess"}, {}):
        answer = client.get("/healthz", headers=asked)
        assert answer.status_code == 200 and INSTANCE_HEADER not in answer.headers


def test_readyz_counts_only_processes_that_are_alive(client, redis_url):
    """Heartbeats lapse within seconds of a SIGKILL: a dead worker or clock is not counted for a minute."""
    env = {**os.environ, "REDIS_URL": redis_url}
    worker, clock = start("worker", env), start("clock", env)

    def readiness() -> tuple[int, int, str]:
        time.sleep(0.2)
        answer = client.get("/readyz")
        body = answer.get_json()
        return answer.status_code, body["queue"]["workers"], body["clock"]["lease"]

    try:
        wait_until(lambda: readiness() == (200, 1, "held"), timeout=60, message="ready with a worker and a clock")
        kill(worker)
        wait_until(lambda: readiness() == (503, 0, "held"), timeout=30, message="the killed worker dropped out")
        assert client.get("/readyz").get_json()["reasons"] == [
            "no worker is alive: nothing runs the dial and delivery jobs"]
        kill(clock)
        wait_until(lambda: readiness() == (503, 0, "free"), timeout=30, message="the killed clock's lease lapsed")
    finally:
        kill(worker)
        kill(clock)
