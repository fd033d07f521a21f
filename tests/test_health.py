"""Liveness and readiness."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from app import create_app
from core.instance import INSTANCE_HEADER
from core.redis_server import EmbeddedRedis
from core.runner import procfile
from tests.support.carrier import wait_until
from tests.support.processes import BIN, ROOT, argv


def test_healthz_and_readyz_report_ok(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["queue"] == {"name": "threadline", "jobs": 0, "workers": 0}


def test_readyz_is_503_when_redis_goes_away(tmp_path):
    server = EmbeddedRedis(tmp_path, appendonly=False)
    app = create_app({"TESTING": True, "REDIS_URL": server.start(), "THREADLINE_API_KEYS": ["k"]})
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    server.stop()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"
    assert client.get("/healthz").status_code == 200


def test_healthz_echoes_the_run_commands_token_only_to_whoever_knows_it(make_app):
    client = make_app(THREADLINE_INSTANCE="the-token").test_client()
    assert client.get("/healthz", headers={INSTANCE_HEADER: "the-token"}).headers[INSTANCE_HEADER] == "the-token"
    for asked in ({INSTANCE_HEADER: "a-guess"}, {}):
        answer = client.get("/healthz", headers=asked)
        assert answer.status_code == 200 and INSTANCE_HEADER not in answer.headers


def test_readyz_counts_live_workers_only(client, redis_url):
    """A worker killed without a word drops out once rq's key for it expires (--worker-ttl, plus rq's minute)."""
    env = {**os.environ, "REDIS_URL": redis_url, "THREADLINE_WORKER_TTL": "1"}
    args = argv(procfile()["worker"], env)
    worker = subprocess.Popen([str(BIN / args[0]), *args[1:]], cwd=ROOT, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def workers() -> int:
        time.sleep(0.2)  # rq's key expires in a minute: no need to ask more often
        return client.get("/readyz").get_json()["queue"]["workers"]

    try:
        wait_until(lambda: workers() == 1, timeout=60, message="the worker registered")
        worker.kill()
        worker.wait()
        wait_until(lambda: workers() == 0, timeout=240, message="the killed worker dropped out")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)  # its scheduler, forked, outlives it
