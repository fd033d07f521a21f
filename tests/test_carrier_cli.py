"""`python -m carrier` as a person starts it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.support.carrier import SUPPORT
from tests.support.processes import ROOT, free_port
from voice.twilio_client import make_client

SID, TOKEN = "AC" + "a1" * 16, "carrier-cli-token"


def test_the_cli_serves_twilios_api_with_the_numbers_given():
    port = free_port()
    env = {**os.environ, "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN}
    process = subprocess.Popen([sys.executable, "-m", "carrier", "--port", str(port), "--number", SUPPORT,
                                "--time-scale", "0.01"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        banner = process.stdout.readline()  # type: ignore[union-attr]
        assert f"http://127.0.0.1:{port}" in banner and SUPPORT in banner
        client = make_client(SID, TOKEN, f"http://127.0.0.1:{port}")
        assert [n.phone_number for n in client.incoming_phone_numbers.list()] == [SUPPORT]
        call = client.calls.create(to="+14155550123", from_=SUPPORT, twiml="<Response><Say>Hi</Say></Response>")
        assert call.sid.startswith("CA")
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 0


def test_the_cli_refuses_to_start_without_credentials():
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    result = subprocess.run([sys.executable, "-m", "carrier", "--port", str(free_port())], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert "TWILIO_ACCOUNT_SID" in result.stderr
