"""The Procfile's worker runs each job in its own process (no fork): one app and one Twilio connection pool serve
every job, a job's timeout cuts it without wedging the worker, and a worker killed mid-dial loses nothing."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from rq import Queue
from rq.job import Job, JobStatus

from callbacks.recovery import sweep
from callbacks.schemas import State
from tests.support.callbacks import ask, callback, work
from tests.support.carrier import CUSTOMER, wait_until
from tests.support.jobs import twilio_pool, twilio_pools
from tests.support.processes import kill, start
from tests.support.voice import calls_to


@pytest.fixture
def silent_twilio() -> Iterator[str]:
    """A "Twilio" that takes connections (the kernel's backlog) and never answers a request."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture
def worker(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Start the Procfile's worker with the environment given (os.environ, with changes): call it once."""
    started = []

    def begin(**changes: str) -> Any:
        started.append(start("worker", {**os.environ, **changes}))
        return started[-1]

    yield begin
    for process in started:
        kill(process)


def finished(job: Job) -> Any:
    """The job's result once it finished (waiting for it), failing the test if it failed."""
    wait_until(lambda: job.get_status(refresh=True) in (JobStatus.FINISHED, JobStatus.FAILED), timeout=60,
               message=f"job {job.id} done")
    assert job.get_status() == JobStatus.FINISHED, job.latest_result().exc_string
    return job.return_value()


def test_jobs_run_in_the_workers_process_over_one_twilio_connection(cb_line, worker):
    queue: Queue = cb_line.app.extensions["threadline.queue"]
    process = worker()
    before = finished(queue.enqueue(twilio_pool))
    assert before["pid"] == process.pid  # no work horse: the job ran in the worker itself
    body = ask(cb_line).get_json()  # due now: its dial job is queued at once
    wait_until(lambda: callback(cb_line, body["id"]).attempts and callback(cb_line, body["id"]).attempts[0].call_sid,
               timeout=60, message="the worker dialled")
    after = finished(queue.enqueue(twilio_pool))
    assert after["pid"] == process.pid and after["pool"] == before["pool"]
    assert after["requests"] >= before["requests"] + 2  # the dial and this job's own request
    assert after["connections"] == before["connections"] == 1  # every job reused the one connection
    assert len(calls_to(cb_line, CUSTOMER)) == 1


def test_a_job_that_times_out_is_cut_and_its_twilio_connection_dropped(app, redis_url, silent_twilio, worker):
    queue: Queue = app.extensions["threadline.queue"]
    process = worker(REDIS_URL=redis_url, TWILIO_ACCOUNT_SID="AC" + "0" * 32, TWILIO_AUTH_TOKEN="token",
                     TWILIO_API_BASE_URL=silent_twilio, PUBLIC_BASE_URL="http://127.0.0.1:9")
    stuck = queue.enqueue(twilio_pool, job_timeout=1)  # Twilio never answers; the REST timeout is 10 s
    wait_until(lambda: stuck.get_status(refresh=True) == JobStatus.FAILED, timeout=60, message="the job timed out")
    assert "JobTimeoutException" in stuck.latest_result().exc_string
    # The same worker goes on, with no pooled connection left from the request the timeout cut.
    assert finished(queue.enqueue(twilio_pools)) == {"pid": process.pid, "pools": 0}


def test_a_worker_killed_mid_dial_loses_nothing(cb_line, silent_twilio, worker):
    process = worker(TWILIO_API_BASE_URL=silent_twilio)  # its call request never gets an answer
    body = ask(cb_line).get_json()
    wait_until(lambda: callback(cb_line, body["id"]).state == State.dialing, timeout=60, message="claimed")
    kill(process)  # SIGKILL while its request waits on "Twilio"

    def recovered() -> bool:
        with cb_line.app.app_context():
            return sweep(datetime.now(UTC))["reconciled"] > 0

    # Its heartbeat lapses; the claim is reconciled (no call at Twilio, so it is redialled) and dialled once.
    wait_until(recovered, timeout=60, message="the dead worker's claim reconciled")
    work(cb_line)
    dialled = callback(cb_line, body["id"])
    assert [a.number for a in dialled.attempts] == [1] and dialled.attempts[0].call_sid
    assert len(calls_to(cb_line, CUSTOMER)) == 1
