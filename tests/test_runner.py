"""The run command end to end: embedded Redis with AOF, real gunicorn and rq worker, nothing left behind."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from tests.conftest import thread_body

ROOT = Path(__file__).resolve().parent.parent
KEY = "runner-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Run:
    """One `python -m core.runner` with its output collected."""

    def __init__(self, var_dir: Path, **env: str) -> None:
        self.port, self.carrier_port = free_port(), free_port()
        environ = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("TWILIO_")}
        environ.update(THREADLINE_VAR_DIR=str(var_dir), THREADLINE_API_KEYS=KEY, PORT=str(self.port),
                       CARRIER_PORT=str(self.carrier_port), **env)
        self.process = subprocess.Popen([sys.executable, "-m", "core.runner"], cwd=ROOT, env=environ,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            self.output.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} never appeared in:\n{''.join(self.output)}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGINT) -> int:
        self.process.send_signal(sig)
        return self.process.wait(60)


def processes_of(var_dir: Path) -> list[psutil.Process]:
    """Live processes started for this var dir (the server by its socket, the rest by their environment)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if str(var_dir) in " ".join(proc.cmdline()) or proc.environ().get("THREADLINE_VAR_DIR") == str(var_dir):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def wait_until_gone(var_dir: Path, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := processes_of(var_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return [" ".join(p.cmdline()) for p in left]


@pytest.fixture
def var_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    for proc in processes_of(tmp_path):  # never leave a server behind a failed test
        proc.kill()


def test_run_serves_the_api_with_a_worker_and_stops_everything_on_ctrl_c(var_dir):
    run = Run(var_dir)
    run.wait_for("Threadline is listening on")
    auth = {"Authorization": f"Bearer {KEY}"}
    put = requests.put(f"{run.url}/api/v1/threads/t-1", json=thread_body(), headers=auth, timeout=10)
    assert put.status_code == 201
    deadline = time.monotonic() + 30
    while requests.get(f"{run.url}/readyz", timeout=10).json()["queue"]["workers"] != 1:
        assert time.monotonic() < deadline, "the worker never registered"
        time.sleep(0.2)
    assert (var_dir / "appendonly.aof").exists()
    # With no Twilio credentials the local carrier plays Twilio, with the demo number.
    assert f"http://127.0.0.1:{run.carrier_port}/_carrier/" in "".join(run.output)
    page = requests.get(f"http://127.0.0.1:{run.carrier_port}/_carrier/", timeout=10)
    assert page.status_code == 200 and "+14155550100" in page.text
    assert run.stop(signal.SIGINT) == 0
    assert wait_until_gone(var_dir) == []

    # Started again, the embedded Redis replays its AOF: what was accepted is still there.
    again = Run(var_dir)
    again.wait_for("Threadline is listening on")
    got = requests.get(f"{again.url}/api/v1/threads/t-1", headers=auth, timeout=10)
    assert got.status_code == 200 and got.json()["subject"] == "App crashes at login"
    assert again.stop(signal.SIGTERM) == 0
    assert wait_until_gone(var_dir) == []


def test_a_killed_run_leaves_no_orphan_server(var_dir):
    run = Run(var_dir)
    run.wait_for("Threadline is listening on")
    started = [p.name() for p in processes_of(var_dir)]
    assert "redis-server" in started, started
    run.stop(signal.SIGKILL)
    assert wait_until_gone(var_dir) == []


def test_an_unreachable_redis_is_one_clear_line(var_dir):
    run = Run(var_dir, REDIS_URL="redis://127.0.0.1:1/0")
    assert run.process.wait(60) == 1
    run.wait_for("threadline: cannot reach Redis at redis://127.0.0.1:1/0: ")
    time.sleep(0.5)  # let the reader see anything printed after it
    assert len(run.output) == 1 and run.lines.empty(), "".join(run.output)
    assert "Traceback" not in run.output[0]


@pytest.mark.parametrize(("env", "says"), [
    ({"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "x"}, "PUBLIC_BASE_URL is not set"),
    ({"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "x", "PUBLIC_BASE_URL": "http://support.example.com"},
     "PUBLIC_BASE_URL must start with https://"),
    ({"PUBLIC_BASE_URL": "support.example.com"}, "PUBLIC_BASE_URL must be an absolute address"),  # the carrier
])
def test_a_public_url_twilio_could_not_use_stops_the_run_before_anything_starts(var_dir, env, says):
    environ = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PUBLIC_BASE_URL")
               and not k.startswith("TWILIO_")}
    environ.update(THREADLINE_VAR_DIR=str(var_dir), PORT=str(free_port()), CARRIER_PORT=str(free_port()), **env)
    result = subprocess.run([sys.executable, "-m", "core.runner"], cwd=ROOT, env=environ, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"threadline: {says}"), lines
    assert list(var_dir.iterdir()) == [] and processes_of(var_dir) == []
