"""Redis behind Sentinel for tests: a master, a replica and three Sentinels (the embedded Valkey binary, no apt
package), on free local TCP ports, and a failover made the honest way: the master SIGKILLed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import redis

from bench.common import free_ports
from core.redis_server import EmbeddedRedis, die_with_parent

MASTER_NAME = "threadline"
# A master silent this long is down to a Sentinel: the failover starts two seconds in. Not one: on a busy two-CPU
# machine a new master once missed a second's pings and the Sentinels failed over again, back to a stale server.
DOWN_AFTER_MS = 2000
FAILOVER_TIMEOUT_MS = 5000


class SentinelGroup:
    """A master and a replica (each with its append-only file, as production runs them) watched by three Sentinels
    (quorum 2), every one its own process in its own session, on 127.0.0.1."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.binary = EmbeddedRedis.executable()
        ports = free_ports(5)
        self.data_ports, self.sentinel_ports = ports[:2], ports[2:]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def env(self) -> dict[str, str]:
        """What Threadline's processes are given to find this Redis (and no REDIS_URL)."""
        return {"REDIS_SENTINELS": ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports),
                "REDIS_SENTINEL_MASTER": MASTER_NAME}

    def _spawn(self, port: int, args: list[str]) -> None:
        with (self.directory / f"{port}.log").open("ab") as log:
            self.processes[port] = subprocess.Popen([self.binary, *args], stdin=subprocess.DEVNULL, stdout=log,
                                                    stderr=subprocess.STDOUT, start_new_session=True,
                                                    preexec_fn=die_with_parent)

    def _start_data(self, port: int, master: int | None) -> None:
        home = self.directory / str(port)
        home.mkdir(parents=True, exist_ok=True)
        args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(home), "--appendonly", "yes",
                "--appendfsync", "always", "--save", "", "--repl-diskless-sync", "yes",
                "--repl-diskless-sync-delay", "0", "--protected-mode", "no"]
        self._spawn(port, args + (["--replicaof", "127.0.0.1", str(master)] if master else []))

    def _start_sentinel(self, port: int, master: int) -> None:
        conf = self.directory / f"sentinel-{port}.conf"  # a Sentinel rewrites its file as it learns: one each
        conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {self.directory}\nprotected-mode no\n"
                        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n"
                        f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                        f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
                        f"sentinel parallel-syncs {MASTER_NAME} 1\n")
        self._spawn(port, [str(conf), "--sentinel"])

    def start(self, timeout: float = 30) -> dict[str, str]:
        """Start everything and wait until the replica is in sync and every Sentinel knows the master, the replica
        and the two other Sentinels; the environment to give Threadline."""
        self.directory.mkdir(parents=True, exist_ok=True)
        master, replica = self.data_ports
        self._start_data(master, None)
        self._start_data(replica, master)
        for port in self.sentinel_ports:
            self._start_sentinel(port, master)
        deadline = time.monotonic() + timeout
        while not self._settled(master):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Sentinel group did not settle within {timeout:g} s; logs in {self.directory}")
            time.sleep(0.2)
        return self.env()

    def _settled(self, master: int) -> bool:
        """Whether the replica is linked to master and each Sentinel sees master, one replica and two Sentinels."""
        try:
            info = self.client(master).info("replication")
            link = info.get("slave0", {})
            if info.get("connected_slaves") != 1 or link.get("state") != "online" or not link.get("offset"):
                return False
            for port in self.sentinel_ports:
                state = self.client(port).sentinel_master(MASTER_NAME)
                if (state["port"] != master or state["num-slaves"] < 1 or state["num-other-sentinels"] < 2
                        or state["is_sdown"] or state["is_odown"]):
                    return False
            return True
        except (redis.ConnectionError, redis.ResponseError):
            return False

    @staticmethod
    def client(port: int) -> redis.Redis:
        return redis.Redis("127.0.0.1", port, socket_timeout=2, socket_connect_timeout=2, decode_responses=True)

    def master_port(self) -> int:
        """The master's port as a Sentinel says it is now."""
        for port in self.sentinel_ports:
            with contextlib.suppress(redis.ConnectionError):
                return int(self.client(port).sentinel_get_master_addr_by_name(MASTER_NAME)[1])
        raise RuntimeError("no Sentinel answers")

    def master_ports(self) -> set[int]:
        """The master's port as each Sentinel that answers says it is now."""
        ports = set()
        for port in self.sentinel_ports:
            with contextlib.suppress(redis.ConnectionError):
                ports.add(int(self.client(port).sentinel_get_master_addr_by_name(MASTER_NAME)[1]))
        return ports

    def fail_over(self, timeout: float = 30) -> tuple[float, float]:
        """SIGKILL the master, wait for the Sentinels to promote the replica, then start the old master again (the
        Sentinels make it the new master's replica, as after an operator's restart); the epochs of the kill and of
        the promotion (the new master answers as one and the Sentinels name it)."""
        old = self.master_port()
        (new,) = [port for port in self.data_ports if port != old]
        killed = time.time()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.processes[old].pid, signal.SIGKILL)
        self.processes[old].wait()
        deadline = time.monotonic() + timeout
        while not (self._says_master(new) and self.master_ports() == {new}):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no failover within {timeout:g} s; logs in {self.directory}")
            time.sleep(0.05)
        promoted = time.time()
        # Back as the new master's replica, as an operator brings back a failed master once every Sentinel names the
        # new one: started as a master, it would hold its stale data as one until a Sentinel reconfigured it.
        self._start_data(old, new)
        return killed, promoted

    def wait_rejoined(self, timeout: float = 30) -> float:
        """Until the master has its replica in sync again (the old master, turned replica); when that was."""
        deadline = time.monotonic() + timeout
        while not self._settled(self.master_port()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the old master did not rejoin as a replica; logs in {self.directory}")
            time.sleep(0.1)
        return time.time()

    def _says_master(self, port: int) -> bool:
        try:
            return self.client(port).execute_command("ROLE")[0] == "master"
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        """SIGTERM every server and Sentinel, SIGKILL what lingers; only the processes started here."""
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
