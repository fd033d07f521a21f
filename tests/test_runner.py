"""The run command end to end: embedded Redis with AOF, real gunicorn and rq worker, nothing left behind."""

from __future__ import annotations

import http.server
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from core.redis_server import EmbeddedRedis
from tests.support.api import thread_body
from tests.support.processes import ROOT, free_port

KEY = "runner-key"


class Run:
    """One `python -m core.runner` with its output collected."""

    def __init__(self, var_dir: Path, **env: str) -> None:
        self.port, self.carrier_port = free_port(), free_port()
        environ = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("TWILIO_")}
        environ.update({"THREADLINE_VAR_DIR": str(var_dir), "THREADLINE_API_KEYS": KEY, "PORT": str(self.port),
                        "CARRIER_PORT": str(self.carrier_port), **env})
        # Its own process group, as in a terminal: group=True signals reach every process in it, as Ctrl-C does.
        self.process = subprocess.Popen([sys.executable, "-m", "core.runner"], cwd=ROOT, env=environ,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        start_new_session=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.lines.put(line)
        self.lines.put(None)  # every process that shared the output has closed it

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            self.output.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} never appeared in:\n{''.join(self.output)}")

    def all_output(self, timeout: float = 60) -> str:
        """Everything printed, once every process has closed the output (it has all stopped)."""
        while (line := self.lines.get(timeout=timeout)) is not None:
            self.output.append(line)
        return "".join(self.output)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGINT, group: bool = False) -> int:
        if group:
            os.killpg(self.process.pid, sig)
        else:
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
    ready_with_a_worker(run.url)
    assert (var_dir / "appendonlydir").is_dir()  # the embedded Redis's append-only files
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
    assert Path(EmbeddedRedis.executable()).name in started, started
    run.stop(signal.SIGKILL)
    assert wait_until_gone(var_dir) == []


def test_an_unreachable_redis_is_one_clear_line(var_dir):
    run = Run(var_dir, REDIS_URL="redis://127.0.0.1:1/0")
    assert run.process.wait(60) == 1
    output = run.all_output()
    assert output.startswith("threadline: cannot reach Redis at redis://127.0.0.1:1/0: ") and output.count("\n") == 1
    assert "Traceback" not in output


def ready_with_a_worker(url: str) -> None:
    """Wait until /readyz is ready and counts one live worker."""
    deadline = time.monotonic() + 30
    while (ready := requests.get(f"{url}/readyz", timeout=10)).json().get("queue", {}).get("workers") != 1:
        assert time.monotonic() < deadline, f"never ready with a worker: {ready.text}"
        time.sleep(0.2)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_a_second_run_on_the_same_var_exits_1_touching_nothing_and_the_first_keeps_serving(var_dir):
    first = Run(var_dir)
    first.wait_for("Threadline is listening on")
    redis_pid = (var_dir / "redis.pid").read_text()

    second = Run(var_dir)
    assert second.process.wait(60) == 1
    assert second.all_output() == (f"Threadline is already running (pid {first.process.pid}, {first.url}). Stop it "
                                   "first (Ctrl-C where it runs), or give this one another THREADLINE_VAR_DIR.\n")
    assert (var_dir / "redis.pid").read_text() == redis_pid
    auth = {"Authorization": f"Bearer {KEY}"}
    assert requests.put(f"{first.url}/api/v1/threads/t-2", json=thread_body(), headers=auth, timeout=10).status_code \
        == 201
    assert requests.get(f"{first.url}/api/v1/threads/t-2", headers=auth, timeout=10).status_code == 200
    ready_with_a_worker(first.url)

    # Ctrl-C in a terminal reaches every process in its group: Redis still stops last, so nobody loses it.
    assert first.stop(signal.SIGINT, group=True) == 0
    output = first.all_output()
    assert "Traceback" not in output and "Error" not in output, output
    assert wait_until_gone(var_dir) == []


def test_when_the_embedded_redis_dies_the_run_says_so_and_stops_everything(var_dir):
    run = Run(var_dir)
    run.wait_for("Press Ctrl-C to stop everything.")
    os.kill(int((var_dir / "redis.pid").read_text()), signal.SIGKILL)
    assert run.process.wait(60) == 1
    assert "threadline: the embedded Redis stopped (killed by SIGKILL); stopping everything\n" in run.all_output()
    assert wait_until_gone(var_dir) == []


def test_when_the_worker_dies_the_run_says_so_and_stops_everything(var_dir):
    run = Run(var_dir)
    run.wait_for("Press Ctrl-C to stop everything.")
    ready_with_a_worker(run.url)
    [worker] = [p for p in psutil.Process(run.process.pid).children() if "worker" in p.cmdline()]
    worker.kill()
    assert run.process.wait(60) == 1
    assert "threadline: the worker stopped (killed by SIGKILL); stopping everything\n" in run.all_output()
    assert wait_until_gone(var_dir) == []  # its scheduler too


def test_the_banner_the_root_and_the_commands_beside_a_run(var_dir):
    run = Run(var_dir, THREADLINE_API_KEYS="", THREADLINE_SECRET_KEY="")
    run.wait_for("Press Ctrl-C to stop everything.")
    banner = "".join(run.output[-12:])
    carrier = f"http://127.0.0.1:{run.carrier_port}"
    for line in (f"Threadline is listening on {run.url}", f"desk       {run.url}/desk/",
                 f"dev phone  {carrier}/_carrier/", f"API        {run.url}/api/v1",
                 "Warning: THREADLINE_API_KEYS is not set", "Warning: THREADLINE_SECRET_KEY is not set"):
        assert line in banner, banner
    root = requests.get(f"{run.url}/", allow_redirects=False, timeout=10)
    assert (root.status_code, root.headers["Location"]) == (302, "/desk/")
    assert "Warning: THREADLINE_METRICS_TOKEN is not set" in banner
    # The processes keep their metrics in ./var/metrics, which /metrics sums.
    assert requests.post(f"{run.url}/voice/incoming", timeout=10).status_code == 403  # unsigned: refused, counted
    assert 'threadline_webhook_requests_total{endpoint="/voice/incoming",status="403"} 1.0' in requests.get(
        f"{run.url}/metrics", timeout=10).text
    assert list((var_dir / "metrics").glob("counter_*.db"))

    environ = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith(("TWILIO_", "PUBLIC_"))}
    environ.update(THREADLINE_VAR_DIR=str(var_dir), FLASK_APP="app:create_app")

    def flask(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([Path(sys.executable).parent / "flask", *args], cwd=ROOT, env=environ, text=True,
                              capture_output=True, timeout=60)

    added = flask("numbers", "set", "+14155550100", "--label", "Main", "--brand", "Acme", "--time-zone", "UTC")
    assert (added.returncode, added.stderr) == (0, "")  # no warnings: the CLI needs no secret key
    synced = flask("numbers", "sync", "+14155550100")
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["changes"] == {}
    assert synced.stderr == (f"bin/run (pid {run.process.pid}, {run.url}) plays Twilio with a local carrier, and it "
                             "already points the demo number +14155550100 at Threadline (this sync ran against that "
                             "carrier). Sync is for a real Twilio number: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN "
                             "and PUBLIC_BASE_URL.\n")
    other = flask("numbers", "sync", "+14155550199")
    assert other.returncode == 1 and "local carrier has only the number +14155550100" in other.stderr

    assert run.stop(signal.SIGTERM) == 0
    output = run.all_output()
    # Said once, in the banner: not by the web, the worker, the clock or the commands beside them.
    assert output.count("THREADLINE_SECRET_KEY is not set") == 1, output
    assert output.count("THREADLINE_API_KEYS is not set") == 1, output
    assert wait_until_gone(var_dir) == []


def test_a_run_never_takes_another_server_on_its_port_for_its_own(var_dir):
    class Healthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"status": "ok"}')

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthy) as other:
        threading.Thread(target=other.serve_forever, daemon=True).start()
        run = Run(var_dir, PORT=str(other.server_address[1]))
        assert run.process.wait(120) == 1
        output = run.all_output()
        other.shutdown()
    assert "threadline: the web process did not come up; see its output above" in output
    assert "Threadline is listening" not in output
    assert wait_until_gone(var_dir) == []


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
