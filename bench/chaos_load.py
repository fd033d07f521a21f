"""Twilio's webhook traffic for the chaos bench: signed POSTs to /voice/incoming and /voice/status at a steady rate,
each answer kept with its time, status and whether its body is what Twilio can act on.

Runs as its own process (so its threads don't share a GIL with the carrier): `python -m bench.chaos_load URL TOKEN
NUMBER RATE OUT`; SIGTERM ends it, and it writes what it saw to OUT as JSON.
"""

from __future__ import annotations

import http.client
import itertools
import json
import secrets
import signal
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import RequestValidator

SENDERS = 32  # connections at once: enough to keep 200/s going while a few answers take seconds


@dataclass
class Answer:
    at: float  # epoch seconds the request was sent
    path: str
    status: int  # 0: no HTTP answer (refused, reset, timed out)
    twiml: bool  # a body Twilio can act on: TwiML, or (status callbacks) TwiML or nothing
    seconds: float


@dataclass
class Load:
    """What the load generator saw: every answer that was not a plain success, and the latency of all."""

    sent: int = 0
    ok: int = 0
    odd: list[Answer] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    @staticmethod
    def read(path: Path) -> Load:
        data = json.loads(path.read_text())
        return Load(data["sent"], data["ok"], [Answer(**a) for a in data["odd"]], data["latencies"])


def is_twiml(body: bytes, empty_ok: bool) -> bool:
    if not body.strip():
        return empty_ok
    try:
        return ET.fromstring(body).tag == "Response"
    except ET.ParseError:
        return False


def request_form(path: str, account: str, number: str, n: int) -> dict[str, str]:
    """Twilio's parameters for a new call from an unknown caller, or a status callback of one that ended."""
    form = {"CallSid": "CA" + secrets.token_hex(16), "AccountSid": account, "From": f"+1415{6000000 + n % 999999:07d}",
            "To": number, "Direction": "inbound", "ApiVersion": "2010-04-01"}
    if path == "/voice/incoming":
        return {**form, "CallStatus": "ringing"}
    return {**form, "CallStatus": "completed", "CallDuration": "3", "SequenceNumber": "0", "Timestamp": ""}


def run(base: str, token: str, account: str, number: str, rate: float, stop: threading.Event) -> Load:
    """Send at rate per second until stop, from SENDERS threads, on kept-alive connections."""
    validator, parts = RequestValidator(token), urlsplit(base)
    load, lock, tickets, began = Load(), threading.Lock(), itertools.count(), time.time()

    def send() -> None:
        conn: http.client.HTTPConnection | None = None
        while not stop.is_set():
            n = next(tickets)
            delay = began + n / rate - time.time()
            if delay > 0 and stop.wait(delay):
                return
            path = "/voice/incoming" if n % 2 == 0 else "/voice/status"
            form = request_form(path, account, number, n)
            body = urlencode(form)
            headers = {"Content-Type": "application/x-www-form-urlencoded",
                       "X-Twilio-Signature": validator.compute_signature(base + path, form)}
            sent = time.time()
            for fresh in (conn is None, True):  # a kept-alive connection the server closed gets one more go
                try:
                    conn = conn or http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
                    conn.request("POST", path, body, headers)
                    response = conn.getresponse()
                    status, answer = response.status, response.read()
                    break
                except (OSError, http.client.HTTPException):
                    if conn is not None:
                        conn.close()
                    conn, status, answer = None, 0, b""
                    if fresh:
                        break
            took = time.time() - sent
            twiml = is_twiml(answer, empty_ok=path == "/voice/status")
            with lock:
                load.sent += 1
                load.latencies.append(took)
                if 200 <= status < 300 and twiml:
                    load.ok += 1
                else:
                    load.odd.append(Answer(sent, path, status, twiml, took))

    senders = [threading.Thread(target=send, daemon=True) for _ in range(SENDERS)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    return load


def main() -> None:
    base, token, account, number, rate, out = sys.argv[1:7]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    load = run(base, token, account, number, float(rate), stop)
    Path(out).write_text(json.dumps({"sent": load.sent, "ok": load.ok, "odd": [asdict(a) for a in load.odd],
                                     "latencies": load.latencies}))


if __name__ == "__main__":
    main()
