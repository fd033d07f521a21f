"""The run command: the embedded Redis when REDIS_URL is unset, then every Procfile process, stopped together."""

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
from core.redis_server import EmbeddedRedis, RedisUnavailable, connect, describe, die_with_parent

ROOT = config.PROJECT_ROOT


def procfile(path: Path = ROOT / "Procfile") -> dict[str, str]:
    """The Procfile's processes: name -> command line."""
    processes = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not line.lstrip().startswith("#"):
            processes[name.strip()] = command.strip()
    return processes


class Runner:
    """Starts Redis (if embedded) and the Procfile's processes; stops them all when one ends or on a signal."""

    def __init__(self, environ: dict[str, str]) -> None:
        self.environ = environ
        self.redis: EmbeddedRedis | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def _ensure_redis(self) -> str:
        if self.environ.get("REDIS_URL"):
            url = self.environ["REDIS_URL"]
            connect(url).close()
            return url
        self.redis = EmbeddedRedis(config.load(self.environ)["VAR_DIR"], appendonly=True)
        url = self.redis.start()
        self.environ["REDIS_URL"] = url
        return url

    def _spawn(self, name: str, command: str) -> None:
        # Its own session, so a Ctrl-C reaches only us and we stop things in order; and it dies with us.
        self.children[name] = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=ROOT, env=self.environ,
                                               stdin=subprocess.DEVNULL, start_new_session=True,
                                               preexec_fn=die_with_parent)

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
        return url

    def _point_number_at(self, carrier_url: str, web_url: str) -> None:
        """Do what `flask numbers sync` does with Twilio: the demo number's calls go to our webhooks."""
        body = json.dumps({"voice_url": f"{web_url}/voice/incoming", "status_callback": f"{web_url}/voice/status",
                           "friendly_name": "Threadline demo number"})
        request = urllib.request.Request(f"{carrier_url}/_carrier/numbers/{self.environ['THREADLINE_DEMO_NUMBER']}",
                                         data=body.encode(), method="PUT", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5):
            pass

    def _wait_for(self, name: str, url: str, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            if self.children[name].poll() is not None:
                return False
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    return response.status == 200
            except OSError:
                time.sleep(0.2)
        return False

    def stop(self) -> None:
        """Stop the processes (web first), then Redis; SIGTERM lets each finish cleanly."""
        for child in self.children.values():
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in self.children.values():
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        if self.redis is not None:
            self.redis.stop()

    def run(self) -> int:
        try:  # before anything starts; the carrier replaces an account given without its token
            config.check(config.load(self.environ, None if self._has_credentials() else {"TWILIO_ACCOUNT_SID": None}))
        except config.ConfigError as exc:
            print(f"threadline: {exc}", file=sys.stderr)
            return 1
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *_: setattr(self, "stopping", True))
        try:
            redis_url = self._ensure_redis()
        except RedisUnavailable as exc:
            print(f"threadline: {exc}", file=sys.stderr)
            return 1
        self.environ.setdefault("HOST", "127.0.0.1")
        self.environ.setdefault("PORT", "8000")
        web_url = f"http://{self.environ['HOST']}:{self.environ['PORT']}"
        try:
            carrier_url = self._start_carrier(web_url)
            if carrier_url:  # the carrier fetches TwiML from us where callbacks say we are
                self.environ.setdefault("PUBLIC_BASE_URL", web_url)
            if carrier_url and not self._wait_for("carrier", f"{carrier_url}/_carrier/calls"):
                print("threadline: the local carrier did not come up; see its output above", file=sys.stderr)
                return 1
            for name, command in procfile().items():
                self._spawn(name, command)
            if not self._wait_for("web", f"{web_url}/healthz"):
                if not self.stopping:
                    print("threadline: the web process did not come up; see its output above", file=sys.stderr)
                return 1
            if carrier_url:
                self._point_number_at(carrier_url, web_url)
            settings = config.load(self.environ)
            where = f"embedded, data in {self.redis.data_dir}" if self.redis else describe(redis_url)
            keys = "set" if settings["THREADLINE_API_KEYS"] else "NONE: set THREADLINE_API_KEYS, the API refuses all"
            twilio = (f"the local carrier at {carrier_url}, number {self.environ['THREADLINE_DEMO_NUMBER']}; "
                      f"dev phone at {carrier_url}/_carrier/" if carrier_url else
                      settings["TWILIO_API_BASE_URL"] or "Twilio's REST API")
            print(f"\nThreadline is listening on {web_url}\n"
                  f"  API     {web_url}/api/v1  (OpenAPI at /api/v1/openapi.json)\n"
                  f"  health  {web_url}/healthz  {web_url}/readyz\n"
                  f"  Redis   {where}\n"
                  f"  API keys {keys}\n"
                  f"  worker  queue {settings['QUEUE_NAME']}, with scheduler\n"
                  f"  Twilio  {twilio}\n"
                  "Press Ctrl-C to stop everything.\n", flush=True)
            while not self.stopping:
                ended = [name for name, child in self.children.items() if child.poll() is not None]
                if ended:
                    print(f"threadline: {', '.join(ended)} stopped; stopping the rest", file=sys.stderr)
                    return 1
                time.sleep(0.2)
            return 0
        finally:
            self.stop()


def main() -> None:
    environ = dict(os.environ)
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ.get('PATH', '')}"
    environ.pop("TWILIO_EDGE", None)
    environ.pop("TWILIO_REGION", None)
    sys.exit(Runner(environ).run())


if __name__ == "__main__":
    main()
