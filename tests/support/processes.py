"""Real processes in tests: the repository root, the venv's commands, free ports and Procfile command lines."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from core.runner import procfile

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def argv(command: str, env: dict[str, str]) -> list[str]:
    """The arguments bash makes of a Procfile command line."""
    out = subprocess.run(["bash", "-c", f'set -- {command}; printf "%s\\n" "$@"'], env=env, check=True,
                         capture_output=True, text=True).stdout
    return out.splitlines()


def start(process: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The Procfile's process of that name, in its own process group, quiet."""
    args = argv(procfile()[process], env)
    return subprocess.Popen([str(BIN / args[0]), *args[1:]], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and whatever it forked (its group), as a crash or an OOM kill would."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextlib.contextmanager
def gunicorn(redis_url: str, log: Path, **env: str) -> Iterator[int]:
    """The Procfile's web process (gunicorn.conf.py, gevent, one worker) on a free local port, until healthy; its
    port."""
    port = free_port()
    dropped = ("PUBLIC_BASE_URL", "FORWARDED_ALLOW_IPS", "GUNICORN_CMD_ARGS")
    environ = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("TWILIO_")}
    environ.update(REDIS_URL=redis_url, HOST="127.0.0.1", PORT=str(port), WEB_CONCURRENCY="1", **env)
    with log.open("wb") as out:
        process = subprocess.Popen([BIN / "gunicorn", "app:create_app()"], cwd=ROOT, env=environ,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"gunicorn stopped:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"gunicorn never became healthy:\n{log.read_text()}"
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
