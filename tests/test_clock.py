"""The clock: due callbacks queued from their own index the moment they are due, under a lease that a dead clock
cannot keep, so no crash leaves a callback waiting on a lock."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from rq import Queue

from app import create_app
from callbacks.clock import LEASE_TTL, Clock
from callbacks.dispatch import Dispatcher
from core import keys
from core.liveness import Lease
from core.redis_server import EmbeddedRedis, connect
from tests.support.api import AUTH
from tests.support.callbacks import ask
from tests.support.carrier import CUSTOMER, SUPPORT, wait_until
from tests.support.processes import free_port, kill, start
from tests.support.voice import Line


def customer_calls(line: Line) -> list[datetime]:
    """When the carrier created each call to the customer (its own clock, to the microsecond)."""
    with line.carrier.state.lock:
        return sorted(call.date_created for call in line.carrier.state.calls.values() if call.to == CUSTOMER)


@pytest.fixture
def processes(cb_line: Line) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Threadline's three Procfile processes on the line's Redis and carrier, restarted by the test at will."""
    running: dict[str, subprocess.Popen[bytes]] = {}
    yield running
    for process in running.values():
        kill(process)


def test_after_every_process_is_killed_a_callback_due_soon_is_dialled_on_time(cb_line, processes):
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "PUBLIC_BASE_URL": web}
    cb_line.script(CUSTOMER, answer="busy")

    def ready() -> bool:
        with contextlib.suppress(requests.RequestException):
            body = requests.get(f"{web}/readyz", timeout=2).json()
            return body["queue"]["workers"] == 1 and body["clock"]["lease"] == "held"
        return False

    for name in ("web", "worker", "clock"):
        processes[name] = start(name, env)
    wait_until(ready, timeout=60, message="Threadline ready")
    for name in ("web", "worker", "clock"):
        kill(processes[name])  # what they leave behind: the clock's lease, the worker's registration and beat
    for name in ("web", "worker", "clock"):
        processes[name] = start(name, env)
    wait_until(ready, timeout=60, message="Threadline back")

    due = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0) + timedelta(seconds=1)
    asked = requests.post(f"{web}/api/v1/threads/t-1/callbacks", headers=AUTH, timeout=10,
                          json={"when": due.isoformat().replace("+00:00", "Z"), "number": SUPPORT})
    assert asked.status_code == 201, asked.text
    assert datetime.fromisoformat(asked.json()["scheduled_for"]) == due
    [placed] = wait_until(lambda: customer_calls(cb_line), timeout=30, message="the callback's call")
    lateness = (placed - due).total_seconds()
    assert 0 <= lateness <= 2, f"dialled {lateness:+.2f} s from its time"


def test_a_due_callback_is_queued_once_and_a_later_one_only_when_it_is_due(cb_line):
    app = cb_line.app
    queue: Queue = app.extensions["threadline.queue"]
    later = ask(cb_line, when=(datetime.now(UTC) + timedelta(hours=1)).isoformat()).get_json()
    due_at = datetime.fromisoformat(later["scheduled_for"]).timestamp()
    dispatcher = Dispatcher(app.extensions["threadline.callbacks"], queue)
    assert (dispatcher.callbacks(due_at - 60), queue.count) == (0, 0)  # an hour early: nothing queued
    assert (dispatcher.callbacks(due_at), queue.count) == (1, 1)
    assert (dispatcher.callbacks(due_at + 0.1), queue.count) == (0, 1)  # queued once, however often it looks
    restarted = Dispatcher(app.extensions["threadline.callbacks"], queue)
    assert (restarted.callbacks(due_at + 0.2), queue.count) == (0, 1)  # a new clock finds the job there


def test_one_clock_works_and_another_takes_over_when_it_dies(cb_line):
    client = cb_line.app.extensions["threadline.redis"]
    first = Lease(client, keys.CLOCK_LEASE, LEASE_TTL, holder="other-host:4242:aa")
    second = Lease(client, keys.CLOCK_LEASE, LEASE_TTL)
    assert first.hold() and not second.hold()  # a holder on another host is trusted until its lease lapses
    client.pexpire(keys.CLOCK_LEASE, 1)
    wait_until(lambda: second.hold(), timeout=5, message="the lapsed lease taken over")
    assert not first.hold()


def test_the_lease_of_a_clock_killed_on_this_host_is_taken_over_at_once(cb_line):
    client = cb_line.app.extensions["threadline.redis"]
    dead = subprocess.Popen(["true"])
    dead.wait()
    holder = f"{os.uname().nodename}:{dead.pid}:bb"
    assert Lease(client, keys.CLOCK_LEASE, 60, holder=holder).hold()
    assert Lease(client, keys.CLOCK_LEASE, LEASE_TTL).hold()  # no minute's wait: that pid is gone


def test_the_clock_waits_out_redis_going_away_and_carries_on(cb_line, tmp_path):
    """Measured on main: the clock exited on the first ConnectionError. Now it backs off and resumes."""
    server = EmbeddedRedis(tmp_path / "redis", appendonly=True)
    url = server.start()
    app = create_app({"TESTING": True, "REDIS_URL": url, "THREADLINE_API_KEYS": ["k"]})
    stop = threading.Event()
    runner = threading.Thread(target=Clock(app).run, args=(stop,), daemon=True)
    runner.start()
    try:
        wait_until(lambda: connect(url).exists(keys.CLOCK_STATUS), timeout=10, message="a first tick")
        server.stop()
        stopped = datetime.now(UTC).timestamp()
        assert runner.is_alive()
        url = server.start()
        wait_until(lambda: float(connect(url).hget(keys.CLOCK_STATUS, "ticked_at") or 0) > stopped,
                   timeout=20, message="ticking again after Redis came back")
        assert runner.is_alive()
    finally:
        stop.set()
        runner.join(timeout=10)
        server.stop()
