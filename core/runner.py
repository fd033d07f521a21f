"""The run command: the embedded Redis when neither REDIS_URL nor REDIS_SENTINELS is set, then every Procfile
process, stopped together."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from core import config
from core.instance import INSTANCE_HEADER, AlreadyRunning, LocalCarrier, RunInfo, RunLock
from core.redis_server import EmbeddedRedis, RedisUnavailable, connect, describe_config, die_with_parent, open_client

ROOT = config.PROJECT_ROOT

# The Procfile's processes and the carrier, as people know them.
ROLES = {"web": "the web process", "worker": "the worker", "clock": "the clock", "carrier": "the local carrier"}


def procfile(path: Path = ROOT / "Procfile") -> dict[str, str]:
    """The Procfile's processes: name -> command line."""
    processes = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not line.lstrip().startswith("#"):
            processes[name.strip()] = command.strip()
    return processes


def ended(returncode: int) -> str:
    """How a process ended, in words: "exit 1" or "killed by SIGKILL"."""
    if returncode >= 0:
        return f"exit {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"


def _signal_group(child: subprocess.Popen[bytes], sig: int) -> None:
    """Send sig to the child's process group (its own session), which may outlive the child."""
    try:
        os.killpg(child.pid, sig)
    except ProcessLookupError:
        pass  # the group is gone


def _wait_group(child: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Wait for a signalled child, then for what it left in its group (rq's scheduler); SIGKILL what lingers."""
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        _signal_group(child, signal.SIGKILL)
        child.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(child.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    _signal_group(child, signal.SIGKILL)


class Runner:
    """Starts Redis (if embedded) and the Procfile's processes; stops them all when one ends or on a signal."""

    def __init__(self, environ: dict[str, str]) -> None:
        self.environ = environ
        self.redis: EmbeddedRedis | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False
        self.lock = RunLock(config.load(environ)["VAR_DIR"])
        # Given to the web process: /healthz answers with it only there, so the banner never reports another server.
        self.token = secrets.token_urlsafe(16)
        self.carrier: LocalCarrier | None = None

    def _ensure_redis(self) -> None:
        """Check the Redis configured answers, or start the embedded one and point the processes at it."""
        settings = config.load(self.environ)
        if config.uses_sentinel(settings):  # Redis behind Sentinel: found through them, none started here
            open_client(settings).close()
        elif self.environ.get("REDIS_URL"):
            connect(self.environ["REDIS_URL"]).close()
        else:
            self.redis = EmbeddedRedis(settings["VAR_DIR"], appendonly=True)
            self.environ["REDIS_URL"] = self.redis.start()

    def _spawn(self, name: str, command: str) -> None:
        # Its own session, so a Ctrl-C reaches only us and we stop things in order; and it dies with us.
        self.children[name] = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=ROOT, env=self.environ,
                                               stdin=subprocess.DEVNULL, start_new_session=True,
                                               preexec_fn=die_with_parent)

    def _fresh_metrics(self) -> None:
        """The processes' shared metrics directory (./var/metrics unless PROMETHEUS_MULTIPROC_DIR names one), emptied
        of the last run's files: /metrics counts from this run's start."""
        default = Path(config.load(self.environ)["VAR_DIR"]) / "metrics"
        directory = Path(self.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(default)))
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):  # only prometheus_client's files, whatever else a named one holds
            stale.unlink()

    def _has_credentials(self) -> bool:
        """Whether Twilio credentials are given; without them the local carrier plays Twilio."""
        return bool(self.environ.get("TWILIO_ACCOUNT_SID") and self.environ.get("TWILIO_AUTH_TOKEN"))

    def _start_carrier(self, web_url: str) -> str | None:
        """Without Twilio credentials, play Twilio with the local carrier; return its URL. It keeps its scripted
        phones in ./var and links its dev phone page to our desk."""
        if self._has_credentials():
            return None
        self.environ["TWILIO_ACCOUNT_SID"] = "AC" + secrets.token_hex(16)
        self.environ["TWILIO_AUTH_TOKEN"] = secrets.token_hex(16)
        port = self.environ.setdefault("CARRIER_PORT", "8700")
        number = self.environ.setdefault("THREADLINE_DEMO_NUMBER", "+14155550100")
        url = f"http://127.0.0.1:{port}"
        self.environ["TWILIO_API_BASE_URL"] = url
        phones = Path(config.load(self.environ)["VAR_DIR"]) / "carrier-phones.json"
        command = (f"{shlex.quote(sys.executable)} -m carrier --port {shlex.quote(port)} --number {shlex.quote(number)}"
                   f" --phones-file {shlex.quote(str(phones))} --desk-url {shlex.quote(web_url + '/desk/')}")
        self._spawn("carrier", command)
        self.carrier = LocalCarrier(url, self.environ["TWILIO_ACCOUNT_SID"], self.environ["TWILIO_AUTH_TOKEN"], number)
        return url

    def _point_number_at(self, carrier_url: str, web_url: str) -> None:
        """Do what `flask numbers sync` does with Twilio: the demo number's calls go to our webhooks."""
        body = json.dumps({"voice_url": f"{web_url}/voice/incoming", "status_callback": f"{web_url}/voice/status",
                           "friendly_name": "Threadline demo number"})
        request = urllib.request.Request(f"{carrier_url}/_carrier/numbers/{self.environ['THREADLINE_DEMO_NUMBER']}",
                                         data=body.encode(), method="PUT", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5):
            pass

    def _wait_for(self, name: str, url: str, timeout: float = 30.0, token: str | None = None) -> bool:
        """Whether url answers 200 before the child name ends; with token, only the answer that carries it counts."""
        headers = {INSTANCE_HEADER: token} if token else {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            if self.children[name].poll() is not None:
                return False
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=1) as response:
                    if response.status == 200 and (not token or response.headers.get(INSTANCE_HEADER) == token):
                        return True
            except OSError:
                pass
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        """SIGTERM the Procfile's processes (web, worker, clock), then the carrier, then Redis: each after its users."""
        stages = [[n for n in self.children if n != "carrier"], [n for n in self.children if n == "carrier"]]
        for stage in stages:
            for name in stage:
                _signal_group(self.children[name], signal.SIGTERM)
            for name in stage:
                _wait_group(self.children[name])
        if self.redis is not None:
            self.redis.stop()

    def _first_ended(self) -> str | None:
        """The first process found stopped, as "the worker stopped (exit 1)", or None while all run."""
        processes = [(ROLES.get(name, f"the {name} process"), child) for name, child in self.children.items()]
        if self.redis is not None and self.redis.process is not None:
            # First: a process that its going took with it (in the moment before the next look) is not the cause.
            processes.insert(0, ("the embedded Redis", self.redis.process))
        for role, process in processes:
            if (returncode := process.poll()) is not None:
                return f"{role} stopped ({ended(returncode)})"
        return None

    def _watch(self) -> int:
        """Until a signal (0) or until one process stops (1): then it says which, and run stops all the rest."""
        while not self.stopping:
            if stopped := self._first_ended():
                print(f"threadline: {stopped}; stopping everything", file=sys.stderr, flush=True)
                return 1
            time.sleep(0.2)
        return 0

    def _banner(self, web_url: str) -> str:
        """What runs where: the web, the desk, the dev phone and the API; then what the configuration lacks."""
        settings = config.load(self.environ)
        where = f"embedded, data in {self.redis.data_dir}" if self.redis else describe_config(settings)
        carrier = self.carrier
        lines = [f"Threadline is listening on {web_url}  (pid {os.getpid()}; / leads to the desk)",
                 f"  desk       {web_url}/desk/"]
        if carrier:
            lines.append(f"  dev phone  {carrier.url}/_carrier/  (call {carrier.number} from there: it rings "
                         "Threadline)")
        lines += [f"  API        {web_url}/api/v1  (OpenAPI at {web_url}/api/v1/openapi.json)",
                  f"  health     {web_url}/healthz  {web_url}/readyz",
                  f"  Redis      {where}",
                  f"  worker     queue {settings['QUEUE_NAME']}; the clock queues what is due",
                  "  Twilio     " + (f"the local carrier at {carrier.url}, number {carrier.number}" if carrier else
                                     settings["TWILIO_API_BASE_URL"] or "Twilio's REST API")]
        lines += [f"Warning: {warning}" for warning in config.web_warnings(settings)]
        return "\n" + "\n".join(lines) + "\nPress Ctrl-C to stop everything.\n"

    def run(self) -> int:
        try:  # before anything starts; the carrier replaces an account given without its token
            config.check(config.load(self.environ, None if self._has_credentials() else {"TWILIO_ACCOUNT_SID": None}))
        except config.ConfigError as exc:
            print(f"threadline: {exc}", file=sys.stderr)
            return 1
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *_: setattr(self, "stopping", True))
        self.environ.setdefault("HOST", "127.0.0.1")
        self.environ.setdefault("PORT", "8000")
        web_url = f"http://{self.environ['HOST']}:{self.environ['PORT']}"
        try:  # before anything starts: a second run must touch nothing of the first
            self.lock.acquire(RunInfo(pid=os.getpid(), web=web_url))
        except AlreadyRunning as exc:
            print(f"{exc}. Stop it first (Ctrl-C where it runs), or give this one another THREADLINE_VAR_DIR.",
                  file=sys.stderr)
            return 1
        try:
            return self._run(web_url)
        finally:
            self.stop()
            self.lock.release()

    def _run(self, web_url: str) -> int:
        try:
            self._ensure_redis()
        except RedisUnavailable as exc:
            print(f"threadline: {exc}", file=sys.stderr)
            return 1
        carrier_url = self._start_carrier(web_url)
        if carrier_url:  # the carrier fetches TwiML from us where callbacks say we are
            self.environ.setdefault("PUBLIC_BASE_URL", web_url)
        if carrier_url and not self._wait_for("carrier", f"{carrier_url}/_carrier/calls"):
            print("threadline: the local carrier did not come up; see its output above", file=sys.stderr)
            return 1
        self.environ["THREADLINE_INSTANCE"] = self.token
        self._fresh_metrics()
        for name, command in procfile().items():
            self._spawn(name, command)
        if not self._wait_for("web", f"{web_url}/healthz", token=self.token):
            if not self.stopping:
                print("threadline: the web process did not come up; see its output above", file=sys.stderr)
            return 1
        if carrier_url:
            self._point_number_at(carrier_url, web_url)
            self.lock.publish(RunInfo(pid=os.getpid(), web=web_url, carrier=self.carrier))
        print(self._banner(web_url), flush=True)
        return self._watch()


def main() -> None:
    environ = dict(os.environ)
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ.get('PATH', '')}"
    environ.pop("TWILIO_EDGE", None)
    environ.pop("TWILIO_REGION", None)
    sys.exit(Runner(environ).run())


if __name__ == "__main__":
    main()
