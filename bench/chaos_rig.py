"""The chaos bench's rig: Redis with its AOF, the Procfile's processes under a supervisor, a cuttable Twilio link and
the platform's webhook receiver, each of which the bench can kill or cut and bring back."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import struct
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.callbacks import API_KEY, environment
from bench.common import Processes, free_ports
from carrier.server import CarrierServer
from context.events import EVENT_ID_HEADER, SIGNATURE_HEADER, verify
from core.redis_server import EmbeddedRedis
from core.runner import procfile

WEBHOOK_SECRET = "whsec-chaos-0123456789"
CARRIER_SCALE = 0.05  # a simulated second of a call lasts 50 ms: whole calls in a second or two


class TcpProxy:
    """A TCP forwarder to the carrier's REST API that the bench can cut: while down it resets every connection,
    open or new, as an unreachable Twilio would look to the dialer. Given several ports, it hands connections to
    each in turn: a load balancer in front of several web processes."""

    def __init__(self, target_port: int | list[int]) -> None:
        self.targets = [target_port] if isinstance(target_port, int) else list(target_port)
        self.turn = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.up = True
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, name="twilio-proxy", daemon=True).start()

    @staticmethod
    def _reset(sock: socket.socket) -> None:
        # Linger 0: close sends RST, so the client sees a reset connection, not a polite end.
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        except OSError:
            pass

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                self._reset(client)
                continue
            self.turn += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", self.targets[self.turn % len(self.targets)]),
                                                    timeout=5)
            except OSError:
                self._reset(client)
                continue
            with self.lock:
                self.open |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self.lock:
                self.open -= {source, sink}
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """Twilio unreachable: every open connection reset, every new one refused."""
        self.up = False
        with self.lock:
            doomed, self.open = list(self.open), set()
        for sock in doomed:
            self._reset(sock)

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


@dataclass
class Received:
    """One event delivery the platform received."""

    event_id: str
    type: str
    callback_id: str | None
    attempt: int | None
    at: float
    valid: bool


class Platform:
    """The messaging platform's webhook endpoint: verifies each delivery's signature and records it."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                valid = verify(WEBHOOK_SECRET, self.headers.get(SIGNATURE_HEADER, ""), raw)
                body = json.loads(raw) if valid else {}
                data = body.get("data", {})
                with platform.lock:
                    platform.received.append(Received(
                        self.headers.get(EVENT_ID_HEADER, ""), body.get("type", ""), data.get("callback_id"),
                        data.get("attempt"), time.time(), valid))
                self.send_response(204 if valid else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/threadline"
        threading.Thread(target=self.server.serve_forever, args=(0.1,), name="platform", daemon=True).start()

    def events(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Rig:
    """Everything a scenario runs against, started in tmp; the bench kills and restarts its parts."""

    tmp: Path
    rate: float
    workers: int = 2
    webs: int = 1  # more than one: each on its own port, behind a round-robin proxy at web_url
    clocks: int = 1
    # Redis run by someone else (a Sentinel group): start() gives the environment that finds it, stop() ends it
    redis_group: Any = None
    settings: dict[str, str] = field(default_factory=dict)  # more environment for every process
    web_ports: list[int] = field(default_factory=list)
    balancer: TcpProxy | None = None
    redis: EmbeddedRedis = field(init=False)
    carrier: CarrierServer = field(init=False)
    proxy: TcpProxy = field(init=False)
    platform: Platform = field(init=False)
    processes: Processes = field(init=False)
    env: dict[str, str] = field(init=False)
    web_url: str = field(init=False)
    commands: dict[str, str] = field(init=False)
    clock_offset: float = 0.0  # epoch seconds minus the carrier's monotonic stamps
    exits: dict[str, int] = field(default_factory=dict)  # exits the bench did not cause, by process
    kills: dict[str, int] = field(default_factory=dict)  # SIGKILLs the bench sent, by process
    outages: list[tuple[str, float, float]] = field(default_factory=list)  # ("redis"|"twilio", from, to)
    lock: threading.RLock = field(default_factory=threading.RLock)
    stopping: threading.Event = field(default_factory=threading.Event)
    # Everything started after the first start comes from this one thread, alive until stop: Linux sends a child
    # its parent-death signal (die_with_parent) when the *thread* that forked it ends, not the process.
    spawner: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "spawner"))

    def start(self, numbers: tuple[str, ...]) -> None:
        """Redis (AOF on), the carrier behind its proxy, the platform, then web, workers and clock."""
        self.redis = EmbeddedRedis(self.tmp / "redis", appendonly=True)
        found = self.redis_group.start() if self.redis_group else {}
        redis_url = "" if self.redis_group else self.redis.start()
        self.carrier = CarrierServer(scale=CARRIER_SCALE, numbers=numbers).start()
        self.carrier.state.keep_calls = 1_000_000  # every call stays listed: the bench counts them all
        self.clock_offset = time.time() - time.monotonic()  # the carrier stamps calls with monotonic time
        self.proxy = TcpProxy(int(self.carrier.url.rsplit(":", 1)[1]))
        self.platform = Platform()
        (port,) = free_ports(1)
        self.web_url = f"http://127.0.0.1:{port}"
        if self.webs > 1:  # the webs' own ports; the world sees the balancer's
            self.web_ports = free_ports(self.webs)
            self.balancer = TcpProxy(self.web_ports)
            self.web_url = self.balancer.url
        self.env = environment(redis_url, self.carrier, self.web_url, self.rate)
        if found:
            del self.env["REDIS_URL"]
            self.env.update(found)
        self.env.update(self.settings)
        self.env.update({"TWILIO_API_BASE_URL": self.proxy.url, "THREADLINE_WEBHOOK_URL": self.platform.url,
                         "THREADLINE_WEBHOOK_SECRET": WEBHOOK_SECRET, "HOST": "127.0.0.1", "PORT": str(port),
                         # One /metrics for every process, as bin/run gives them
                         "PROMETHEUS_MULTIPROC_DIR": str(self.tmp / "metrics")})
        for phone in numbers:  # calls in, as a Twilio console would set them
            number = self.carrier.state.number_by_phone(phone)
            number.voice_url, number.status_callback = f"{self.web_url}/voice/incoming", f"{self.web_url}/voice/status"
        self.commands = procfile()
        self.processes = Processes(self.env, self.tmp)
        for name in self.names():
            self.processes.start(name, self._command(name))
        self._wait_ready()
        threading.Thread(target=self._supervise, name="supervisor", daemon=True).start()

    def _wait_ready(self) -> None:
        """Until /readyz says yes (web serving, a worker beating, the clock holding its lease): the load and the
        first callbacks must not meet a web still booting."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.web_url}/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:  # refused while booting, or 503 (HTTPError) until worker and clock are up
                pass
            time.sleep(0.2)
        raise SystemExit(f"Threadline was not ready within 60 s; the web's log:\n{self.processes.tail('web')}")

    def names(self) -> list[str]:
        """The processes the Procfile runs here: each web, each worker, each clock (when the Procfile has one)."""
        def numbered(kind: str, count: int) -> list[str]:
            return [kind] if count == 1 else [f"{kind}-{n + 1}" for n in range(count)]

        return [*numbered("web", self.webs), *(f"worker-{n + 1}" for n in range(self.workers)),
                *(numbered("clock", self.clocks) if "clock" in self.commands else [])]

    def _command(self, name: str) -> str:
        kind, _, n = name.partition("-")
        if kind == "web" and n:  # one of several webs: its own port, behind the balancer
            return f"env PORT={self.web_ports[int(n) - 1]} {self.commands[kind]}"
        return self.commands[kind]

    def _supervise(self) -> None:
        """Restart whatever exits on its own, as systemd or a platform would (Restart=always)."""
        while not self.stopping.wait(0.25):
            with self.lock:
                for name in self.processes.dead():
                    self.exits[name] = self.exits.get(name, 0) + 1
                    print(f"  {name} exited by itself; restarting it. Its last lines:\n"
                          f"{self.processes.tail(name, 5)}", file=sys.stderr, flush=True)
                    self.processes.kill(name)
                    self._start(name)

    def _start(self, name: str) -> None:
        self.spawner.submit(self.processes.start, name, self._command(name)).result()

    def crash(self, name: str) -> None:
        """SIGKILL one process's group (a worker's work horse too) and start it again at once."""
        with self.lock:
            self.processes.kill(name)
            self.kills[name] = self.kills.get(name, 0) + 1
            self._start(name)

    def redis_outage(self, seconds: float) -> None:
        """SIGKILL Redis, keep it down for seconds, and start it again on the same directory, from its AOF."""
        began = time.time()
        assert self.redis.process is not None
        os.killpg(self.redis.process.pid, signal.SIGKILL)
        self.redis.process.wait()
        self.redis.process = None
        self.stopping.wait(seconds)
        self.spawner.submit(self.redis.start, 30).result()
        self.outages.append(("redis", began, time.time()))

    def twilio_outage(self, seconds: float) -> None:
        """Twilio's REST API unreachable for seconds."""
        began = time.time()
        self.proxy.cut()
        self.stopping.wait(seconds)
        self.proxy.restore()
        self.outages.append(("twilio", began, time.time()))

    def random_victim(self, rng: random.Random, kinds: tuple[str, ...]) -> str:
        return rng.choice([name for name in self.names() if name.split("-")[0] in kinds])

    def log_errors(self) -> dict[str, int]:
        """Lines with a Traceback per process log, to point at where to look."""
        return {name: sum(1 for line in self.processes.lines(name) if "Traceback" in line) for name in self.names()}

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            self.processes.stop()
        self.platform.close()
        self.proxy.close()
        if self.balancer:
            self.balancer.close()
        self.carrier.stop()
        if self.redis_group:
            self.redis_group.stop()
        else:
            self.redis.stop()
        self.spawner.shutdown()


def api_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}
