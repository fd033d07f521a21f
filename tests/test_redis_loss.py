"""Redis killed and restarted from its AOF under a running app and worker: 503s and apologies meanwhile, then on."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from rq import Queue

from app import create_app
from core.redis_server import EmbeddedRedis, connect
from core.runner import procfile
from directory.models import AgentConfig, NumberConfig
from tests.support.api import API_KEY, AUTH, thread_body
from tests.support.carrier import wait_until
from tests.support.desk import HTML, sign_in, with_password
from tests.support.outage import redis_away
from tests.support.processes import BIN, ROOT, argv
from tests.support.voice import signed_post

TOKEN = "redis-loss-token"
BASE = "https://support.example.com"
SUPPORT = "+14155550100"
CALL = {"CallSid": "CA" + "7" * 32, "AccountSid": "AC" + "0" * 32, "From": "+14155550123", "To": SUPPORT,
        "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01"}
RECORDING = {"CallSid": CALL["CallSid"], "RecordingSid": "RE" + "7" * 32, "RecordingStatus": "completed",
             "RecordingUrl": "https://api.twilio.com/rec", "RecordingDuration": "3"}


@pytest.fixture
def app(server: EmbeddedRedis, tmp_path: Path) -> Flask:
    app = create_app({"TESTING": True, "REDIS_URL": server.url, "THREADLINE_API_KEYS": [API_KEY],
                      "VAR_DIR": str(tmp_path), "SECRET_KEY": "test-secret", "TWILIO_AUTH_TOKEN": TOKEN,
                      "TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "PUBLIC_BASE_URL": BASE, "REDIS_TIMEOUT_SECONDS": 0.5})
    now = datetime.now(UTC)
    app.extensions["threadline.agents"].put("sam", AgentConfig(name="Sam Lee", phone="+14155550777",
                                                                status="available"), now)
    app.extensions["threadline.numbers"].put(SUPPORT, NumberConfig(label="US", brand="Acme",
                                                                   time_zone="America/New_York", agents=["sam"]), now)
    with_password(app)
    assert app.test_client().put("/api/v1/threads/t-1", json=thread_body(), headers=AUTH).status_code == 201
    return app


def says(body: bytes) -> list[str]:
    root = ET.fromstring(body)
    assert root.tag == "Response"
    return [node.text or "" for node in root.iter("Say")]


def webhook(client: Any, path: str, form: dict[str, str]) -> Any:
    return signed_post(client, path, form, base=BASE, token=TOKEN)


def test_the_api_answers_503_with_retry_after_while_redis_is_away_and_everything_after(app, server, caplog):
    client = app.test_client()
    with redis_away(server), caplog.at_level(logging.WARNING):
        for method, path in (("GET", "/api/v1/threads/t-1"), ("GET", "/api/v1/threads?phone=%2B14155550123"),
                             ("PUT", "/api/v1/threads/t-2"), ("POST", "/api/v1/threads/t-1/callbacks"),
                             ("GET", "/api/v1/threads/t-1/calls")):
            body = thread_body() if path.endswith("t-2") else {"number": SUPPORT} if "callbacks" in path else None
            response = client.open(path, method=method, json=body, headers=AUTH)
            assert response.status_code == 503, (path, response.data)
            assert int(response.headers["Retry-After"]) > 0
            assert response.get_json()["error"]["code"] == "unavailable"
            assert "Redis" in response.get_json()["error"]["message"]
    failures = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(failures) == 5 and not any(r.exc_info for r in failures)  # one line each, no traceback
    thread = client.get("/api/v1/threads/t-1", headers=AUTH)
    assert thread.status_code == 200 and thread.get_json()["subject"] == "App crashes at login"  # kept by the AOF
    assert client.put("/api/v1/threads/t-2", json=thread_body(), headers=AUTH).status_code == 201


def test_the_503_is_in_the_openapi_document_of_every_operation(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            answer = operation["responses"]["503"]
            assert "Retry-After" in answer["headers"], (method, path)


def test_a_hung_redis_is_a_503_too_once_its_commands_time_out(app, server):
    client = app.test_client()
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)  # a network blip: the connection stays, nothing answers
    try:
        response = client.get("/api/v1/threads/t-1", headers=AUTH)
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert client.get("/api/v1/threads/t-1", headers=AUTH).status_code == 200


def test_twilio_hears_our_apology_while_redis_is_away_and_the_call_flow_after(app, server, caplog):
    client = app.test_client()
    with redis_away(server), caplog.at_level(logging.WARNING):
        for path in ("/voice/incoming", "/voice/general?number=%2B14155550100",
                     "/voice/callback/answer?cb=c&attempt=1"):
            response = webhook(client, path, CALL)
            assert response.status_code == 200 and response.mimetype == "text/xml", (path, response.data)
            assert says(response.data) == ["Sorry, something went wrong on our side. Please try again later. Goodbye."]
            assert ET.fromstring(response.data).find("Hangup") is not None
        # Status callbacks: Twilio ignores their body; a 503 says the update was not kept.
        for path, form in (("/voice/status", {**CALL, "CallStatus": "completed", "SequenceNumber": "1"}),
                           ("/voice/callback/status?cb=c&attempt=1", {**CALL, "CallStatus": "completed"}),
                           ("/voice/recording", RECORDING)):
            response = webhook(client, path, form)
            assert response.status_code == 503 and response.headers["Retry-After"], (path, response.data)
            assert says(response.data) == []
    failures = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(failures) == 6 and not any(r.exc_info for r in failures)
    assert all(CALL["CallSid"] in r.getMessage() for r in failures)
    greeting = webhook(client, "/voice/incoming", {**CALL, "CallSid": "CA" + "8" * 32})
    assert greeting.status_code == 200 and "Hi Jane" in " ".join(says(greeting.data))


def test_an_unsigned_webhook_is_still_refused_while_redis_is_away(app, server):
    with redis_away(server):
        assert app.test_client().post("/voice/incoming", data=CALL).status_code == 403


def test_the_desk_says_so_in_words_while_redis_is_away_and_works_after(app, server):
    client = app.test_client()
    sign_in(client)
    with redis_away(server):
        for path in ("/desk/", "/desk/threads/t-1", "/desk/login"):
            response = client.get(path, headers=HTML)
            assert response.status_code == 503 and response.headers["Retry-After"], path
            page = response.get_data(as_text=True)
            assert "briefly unavailable" in page and "Traceback" not in page
    home = client.get("/desk/", headers=HTML)
    assert home.status_code == 200 and "Upcoming callbacks" in home.get_data(as_text=True)  # still signed in


def test_an_open_desk_event_stream_ends_cleanly_when_redis_goes_and_a_new_one_streams_after(app, server):
    client = app.test_client()
    sign_in(client)
    response = client.get("/desk/events", headers={"Accept": "text/event-stream"}, buffered=False)
    frames = iter(response.response)
    assert b": connected" in next(frames)
    with redis_away(server):
        rest = list(frames)  # ends, without an exception, within a second (its next read or session check)
        assert not any(b"screen_pop" in frame for frame in rest)
    again = client.get("/desk/events", headers={"Accept": "text/event-stream"}, buffered=False)
    assert again.status_code == 200 and b": connected" in next(iter(again.response))
    again.close()


def noticed(log_path: Path) -> int:
    """How many times the worker's log says it found Redis away (rq's own words, or SteadyWorker's)."""
    text = log_path.read_text()
    return text.count("could not connect to Redis") + text.count("Redis unavailable")


def finished(queue: Queue, *args: int) -> Any:
    """Enqueue operator.add(*args) (any importable function runs) and wait until a worker has run it."""
    job = queue.enqueue("operator.add", *args)
    wait_until(lambda: job.get_status(refresh=True) == "finished", timeout=120, message=f"the job {args} to run")
    return job.return_value()


@contextmanager
def procfile_worker(server: EmbeddedRedis, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """The Procfile's worker, exactly, on this module's Redis and queue; its log in tmp_path."""
    env = {**os.environ, "REDIS_URL": server.url, "THREADLINE_QUEUE": "redis-loss", "THREADLINE_VAR_DIR": str(tmp_path)}
    command = argv(procfile()["worker"], env)
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log_file:
        worker = subprocess.Popen([BIN / command[0], *command[1:]], cwd=ROOT, env=env, start_new_session=True,
                                  stdout=log_file, stderr=subprocess.STDOUT)
    try:
        yield worker, log_path
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def test_a_worker_rides_out_redis_restarts_and_runs_the_jobs_queued_after(server, tmp_path):
    with procfile_worker(server, tmp_path) as (worker, log_path):
        for round_ in range(4):
            queue = Queue("redis-loss", connection=connect(server.url, decode=False))
            assert finished(queue, round_, 40) == round_ + 40
            before = noticed(log_path)
            with redis_away(server):
                wait_until(lambda before=before: noticed(log_path) > before, timeout=60,
                           message="the worker to notice Redis went away")
            assert worker.poll() is None, log_path.read_text()
        queue = Queue("redis-loss", connection=connect(server.url, decode=False))
        assert finished(queue, 2, 3) == 5
        assert worker.poll() is None and "quitting" not in log_path.read_text()


def test_a_job_that_ended_while_redis_was_away_no_longer_reads_as_running_once_it_is_back(server, tmp_path):
    """Else the sweep takes its dial for one in hand, and the callback waits a minute (found by the chaos suite)."""
    with procfile_worker(server, tmp_path) as (worker, log_path):
        queue = Queue("redis-loss", connection=connect(server.url, decode=False))
        job = queue.enqueue("time.sleep", 2)
        wait_until(lambda: job.get_status(refresh=True) == "started", message="the job to start")
        queue.connection.execute_command("WAITAOF", 1, 0, 5000)  # its start is on disk, kept through the restart
        with redis_away(server):
            wait_until(lambda: f"ending job {job.id}" in log_path.read_text(), timeout=60,
                       message="the job to end while Redis is away")
        queue = Queue("redis-loss", connection=connect(server.url, decode=False))
        wait_until(lambda: job.get_status(refresh=True) == "failed", message="the job to read as failed")
        assert job.id not in queue.started_job_registry.get_job_ids()
        assert worker.poll() is None, log_path.read_text()
