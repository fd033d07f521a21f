"""One run per data directory: the lock bin/run holds on var/run.lock, and what it tells other commands there."""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LOCK_NAME = "run.lock"

# The run command sends the token it gave its web process; only that process's /healthz answers with it.
INSTANCE_HEADER = "X-Threadline-Instance"


@dataclass(frozen=True)
class LocalCarrier:
    """The local carrier a run plays Twilio with: where it is, its account, and its demo number."""

    url: str
    account_sid: str
    auth_token: str
    number: str


@dataclass(frozen=True)
class RunInfo:
    """What a live run writes in its lock file: its pid, its web address and, if it runs one, its local carrier."""

    pid: int | None
    web: str | None
    carrier: LocalCarrier | None = None

    def describe(self) -> str:
        """The run in words, such as "pid 42, http://127.0.0.1:8000"."""
        return ", ".join([f"pid {self.pid}" if self.pid else "pid unknown", *([self.web] if self.web else [])])


class AlreadyRunning(Exception):
    """Another run holds the data directory's lock."""

    def __init__(self, info: RunInfo) -> None:
        super().__init__(f"Threadline is already running ({info.describe()})")
        self.info = info


def _read(fd: int) -> RunInfo:
    """The run described in the open lock file; fields it has not written yet are None."""
    try:
        data: dict[str, Any] = json.loads(os.pread(fd, 65536, 0).decode() or "{}")
        carrier = data.get("carrier")
        return RunInfo(pid=data.get("pid"), web=data.get("web"), carrier=LocalCarrier(**carrier) if carrier else None)
    except (ValueError, TypeError):
        return RunInfo(pid=None, web=None)


class RunLock:
    """An exclusive flock on var_dir/run.lock, held (with the run's facts written in it) until release or exit."""

    def __init__(self, var_dir: str | Path) -> None:
        self.path = Path(var_dir).resolve() / LOCK_NAME
        self.fd: int | None = None

    def acquire(self, info: RunInfo) -> None:
        """Take the lock and write info in it; AlreadyRunning, touching nothing, when a live run holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # 0600: a local carrier's account (random, for this run only) is written in it for the CLI beside it.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        for _ in range(20):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read(fd)
                # A run writes its pid as soon as it holds the lock: without one, this was a command glancing
                # at the lock (running()) or a run that has just taken it, so look again in a moment.
                if holder.pid is not None:
                    os.close(fd)
                    raise AlreadyRunning(holder) from None
                time.sleep(0.05)
        else:
            os.close(fd)
            raise AlreadyRunning(holder)
        self.fd = fd
        self.publish(info)

    def publish(self, info: RunInfo) -> None:
        """Replace the facts in the lock file (the file itself stays: the lock is on it)."""
        assert self.fd is not None, "publish before acquire"
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(asdict(info)).encode(), 0)

    def release(self) -> None:
        """Empty the file and let go of the lock (closing it releases the flock)."""
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = None


def running(var_dir: str | Path) -> RunInfo | None:
    """The run that holds var_dir's lock now, or None when no run does."""
    try:
        fd = os.open(Path(var_dir).resolve() / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read(fd)
    else:
        return None  # nobody holds it; closing the file lets go of our shared lock
    finally:
        os.close(fd)
