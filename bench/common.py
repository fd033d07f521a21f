"""What the benchmarks share: percentiles, CPU time, free ports, wrk, gunicorn and Procfile processes."""

from __future__ import annotations

import http.client
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from core.redis_server import die_with_parent

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"  # the venv's, next to the Python running the benchmark
GUNICORN_CONF = ROOT / "gunicorn.conf.py"
LUA = Path(__file__).resolve().parent / "wrk_requests.lua"


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of values (fraction 0..1, 1 is the largest); NaN when there are none."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))] if ordered else math.nan


def cpu_seconds(pids: list[int], reaped: bool = False) -> float:
    """User plus system CPU time of these processes so far, and with reaped of the children they waited for (Linux)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += sum(int(f) for f in fields[11:15 if reaped else 13])  # utime, stime[, cutime, cstime]
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def free_ports(count: int) -> list[int]:
    """count local TCP ports free right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def require_wrk() -> None:
    """Stop with how to install wrk when it is missing."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: sudo apt-get install wrk")


def run_wrk(url: str, requests_file: Path, seconds: float, connections: int, threads: int,
            *script_args: str) -> dict[str, float]:
    """wrk with bench/wrk_requests.lua sending requests_file's signed webhooks to url; the figures it prints."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s", "-s", str(LUA), url,
           "--", str(requests_file), str(threads), *script_args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    match = re.search(r"^WRK (.*)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not match:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return {k: float(v) for k, v in (pair.split("=") for pair in match.group(1).split())}


def entry(main: Callable[[], None], stopped: str) -> None:
    """Run a benchmark's main, cleaning up on kill as on Ctrl-C and saying what was stopped."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        main()
    except KeyboardInterrupt:
        raise SystemExit(f"interrupted; {stopped} stopped") from None


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL whatever is left of the process group this process leads (only ever our own), and reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        pass
    process.wait()


class Gunicorn:
    """gunicorn with the project's gunicorn.conf.py (or conf, plus extra settings), stopped for sure on exit."""

    def __init__(self, spec: str, port: int, env: dict[str, str], log: Path, conf: Path = GUNICORN_CONF,
                 extra: Sequence[str] = (), quick: bool = False) -> None:
        self.spec, self.port, self.env, self.log = spec, port, env, log
        self.conf, self.extra, self.quick = conf, list(extra), quick
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Gunicorn:
        env = {**self.env, "HOST": "127.0.0.1", "PORT": str(self.port)}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(GUNICORN), "-c", str(self.conf), *self.extra, self.spec], cwd=ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=die_with_parent)
        try:
            self._wait_ready(self.process)
        except BaseException:  # Ctrl-C while waiting too
            self.stop()
            raise
        return self

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 30
        while True:  # any HTTP answer (a 404 will do) means a worker is serving
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"gunicorn {self.spec} did not start; its output:\n{self.tail()}") from None
                time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def pids(self) -> list[int]:
        """The master's and its workers'."""
        if self.process is None:
            return []
        master = self.process.pid
        try:
            return [master, *(int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split())]
        except OSError:
            return [master]

    def tail(self, lines: int = 20) -> str:
        """The last lines of its log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM (graceful) or, when quick, SIGINT (open streams hold a graceful stop); then SIGKILL its group."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT if self.quick else signal.SIGTERM)
            try:
                self.process.wait(5 if self.quick else 15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        stop_group(self.process)
        self.process = None


class Processes:
    """Procfile commands run as bin/run runs them (bash -c "exec ...", own session), output to a file each."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: str) -> None:
        """Start command under name, its output added to name.log (a restart keeps what the last run wrote)."""
        with (self.logs / f"{name}.log").open("ab") as log:
            self.running[name] = subprocess.Popen(
                ["bash", "-c", f"exec {command}"], cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)

    def kill(self, name: str) -> None:
        """SIGKILL one's whole process group (an RQ work horse with its worker) and reap it, as a crash would."""
        stop_group(self.running[name])

    def dead(self) -> list[str]:
        """The names of those that have exited."""
        return [name for name, p in self.running.items() if p.poll() is not None]

    def pids(self, prefix: str) -> list[int]:
        """The process ids of those whose name starts with prefix."""
        return [p.pid for name, p in self.running.items() if name.startswith(prefix)]

    def lines(self, name: str) -> list[str]:
        """Everything one has written so far, by line."""
        try:
            return self.logs.joinpath(f"{name}.log").read_text(errors="replace").splitlines()
        except OSError:
            return []

    def tail(self, name: str, lines: int = 15) -> str:
        """The last lines one has written."""
        return "\n".join(self.lines(name)[-lines:])

    def stop(self) -> None:
        """SIGTERM each group (RQ finishes its job), then SIGKILL what is left; only our own sessions."""
        for p in self.running.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in self.running.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            stop_group(p)  # the job's work horse too, if it outlived its worker
        self.running.clear()
