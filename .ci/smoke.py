"""CI smoke: the README's run command in a fresh clone, as a new user runs it, then one inbound call and Ctrl-C.

Runs with the machine's own python3 (standard library only): nothing of the project is installed before bin/run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
API_KEY = "smoke-key"
ADMIN_KEY = "smoke-admin"
SUPPORT = "+14155550100"  # the run command's demo number
CUSTOMER = "+14155550123"
READY_WITHIN = 150.0  # seconds, the venv's first install included
STARTED = time.monotonic()


class SmokeFailed(Exception):
    """The run command did not do what the README promises."""


def say(text: str) -> None:
    print(f"smoke [{time.monotonic() - STARTED:5.1f} s] {text}", flush=True)


def free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def any_free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(method: str, url: str, body: dict | None = None, key: str | None = None) -> tuple[int, dict]:
    """One JSON request; the status and the decoded body (empty when there is none)."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    return status, json.loads(text) if text else {}


def wait_until_ready(web: str, run: subprocess.Popen[bytes], log_path: Path) -> dict:
    """Wait for bin/run's banner (it has pointed the demo number at the webhooks by then) and for /readyz to report
    ready with a worker; fail if bin/run ends or the time is up."""
    deadline = time.monotonic() + READY_WITHIN
    last = "no answer yet"
    while time.monotonic() < deadline:
        if run.poll() is not None:
            raise SmokeFailed(f"bin/run ended (exit {run.returncode}) before Threadline was ready")
        try:
            status, health = call("GET", f"{web}/readyz")
            listening = "Threadline is listening on" in log_path.read_text(errors="replace")
            if status == 200 and health.get("status") == "ready" and health["queue"]["workers"] >= 1 and listening:
                return health
            last = json.dumps(health)
        except (OSError, ValueError) as error:
            last = str(error)
        time.sleep(1)
    raise SmokeFailed(f"not ready after {READY_WITHIN:.0f} s; /readyz said: {last}")


def place_call(web: str, carrier: str) -> dict:
    """Configure the demo number, push a thread, dial in from the customer's phone; the finished call."""
    checks = [
        call("PUT", f"{web}/api/v1/numbers/{SUPPORT}", {"label": "Smoke Support", "brand": "Acme",
                                                         "time_zone": "America/New_York"}, ADMIN_KEY),
        call("PUT", f"{web}/api/v1/threads/smoke-1",
             {"subject": "App crashes at login", "customer": {"name": "Jane Doe", "phone": CUSTOMER},
              "messages": [{"id": "m1", "author": "customer", "text": "The app closes as soon as I log in",
                            "sent_at": "2026-11-22T10:00:00Z"}]}, API_KEY),
        call("PUT", f"{carrier}/_carrier/phones/{CUSTOMER}", {"hangup_after": 6}),
    ]
    for status, body in checks:
        if status >= 300:
            raise SmokeFailed(f"setting up the call failed: {status} {body}")
    status, placed = call("POST", f"{carrier}/_carrier/inbound", {"from": CUSTOMER, "to": SUPPORT})
    if status != 201:
        raise SmokeFailed(f"the carrier refused the inbound call: {status} {placed}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, timeline = call("GET", f"{carrier}/_carrier/calls/{placed['sid']}")
        if timeline.get("status") == "completed":
            return timeline
        time.sleep(0.5)
    raise SmokeFailed(f"the inbound call did not end within 30 s: {timeline.get('status')}")


def processes_in(root: Path) -> list[str]:
    """Processes still running from the clone (every process bin/run starts works there)."""
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")).is_relative_to(root):
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                left.append(f"{entry.name} {command.strip()}")
        except OSError:
            continue  # gone already, or not ours to read
    return left


def smoke(clone: Path, log_path: Path) -> None:
    say(f"cloning {REPO} into {clone}")
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    ports = {"PORT": 8000, "CARRIER_PORT": 8700}
    for name, port in ports.items():
        if not free(port):
            ports[name] = any_free_port()
            say(f"port {port} is taken on this machine; using {ports[name]} for {name}")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "THREADLINE_", "PUBLIC_BASE"))}
    environ.pop("REDIS_URL", None)
    environ.pop("VIRTUAL_ENV", None)
    environ.update({name: str(port) for name, port in ports.items()},
                   THREADLINE_API_KEYS=API_KEY, THREADLINE_ADMIN_KEYS=ADMIN_KEY)
    web, carrier = f"http://127.0.0.1:{ports['PORT']}", f"http://127.0.0.1:{ports['CARRIER_PORT']}"
    say("THREADLINE_API_KEYS=… bin/run (builds .venv from requirements.txt alone)")
    with log_path.open("wb") as log:
        run = subprocess.Popen(["bin/run"], cwd=clone, env=environ, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        health = wait_until_ready(web, run, log_path)
        say(f"ready: {health['queue']['workers']} worker(s) on queue {health['queue']['name']}")
        timeline = place_call(web, carrier)
        heard = " ".join(e["text"] for e in timeline["events"] if e["kind"] == "heard")
        if "Jane" not in heard:
            raise SmokeFailed(f"the caller did not hear their thread's greeting; heard: {heard!r}")
        say(f"inbound call answered from the thread: {heard[:70]!r}…")
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGINT)  # Ctrl-C, as the banner says
            try:
                run.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                raise SmokeFailed("bin/run did not stop within 30 s of Ctrl-C") from None
    time.sleep(1)  # let the children's exits settle
    left = processes_in(clone)
    if left:
        for pid in left:
            os.kill(int(pid.split()[0]), signal.SIGKILL)
        raise SmokeFailed("processes left after Ctrl-C:\n  " + "\n  ".join(left))
    say(f"stopped with Ctrl-C (exit {run.returncode}); no process left")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="threadline-smoke-") as scratch:
        log_path = Path(scratch) / "run.log"
        try:
            smoke(Path(scratch) / "threadline", log_path)
        except (SmokeFailed, subprocess.CalledProcessError) as failure:
            print(f"smoke FAILED: {failure}\n--- bin/run output ---", file=sys.stderr)
            output = log_path.read_text(errors="replace").splitlines() if log_path.exists() else ["(none)"]
            print("\n".join(line for line in output if not line.startswith("WARNING: Location"))[-6000:],
                  file=sys.stderr)
            return 1
    say("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
