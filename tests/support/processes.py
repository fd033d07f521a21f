"""Real processes in tests: the repository root, the venv's commands, free ports and Procfile command lines."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

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
