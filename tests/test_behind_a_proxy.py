"""Behind a TLS-terminating proxy on another address: webhooks validate by PUBLIC_BASE_URL or trusted forwarding."""

from __future__ import annotations

import http.client
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from twilio.request_validator import RequestValidator

from directory.models import AgentConfig, NumberConfig
from tests.support.carrier import AGENT, CUSTOMER, SUPPORT
from tests.support.processes import gunicorn
from tests.support.voice import not_absolute, twiml_urls

BIN = Path(sys.executable).parent
PROXY_ADDRESS = "127.0.0.2"  # not 127.0.0.1, which gunicorn trusts by default
PUBLIC = "https://support.example.com"  # what Twilio calls, and signs
TOKEN = "proxy-test-token"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


class Forwarder(BaseHTTPRequestHandler):
    """A reverse proxy's request: passed on from PROXY_ADDRESS, saying the client came over https."""

    server: Proxy

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers.update({"X-Forwarded-Proto": "https", "X-Forwarded-For": self.client_address[0]})
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=30,
                                              source_address=(PROXY_ADDRESS, 0))
        try:
            upstream.request(self.command, self.path, body, headers)  # the Host header is passed on as it came
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class Proxy(ThreadingHTTPServer):
    """The proxy on PROXY_ADDRESS, in a thread."""

    daemon_threads = True

    def __init__(self, upstream_port: int) -> None:
        super().__init__((PROXY_ADDRESS, 0), Forwarder)
        self.upstream_port = upstream_port
        self.url = f"http://{PROXY_ADDRESS}:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def number(make_app: Any) -> None:
    """A support number with an agent, in the Redis the gunicorn serves from."""
    app = make_app()
    now = datetime.now(UTC)
    app.extensions["threadline.agents"].put("sam", AgentConfig(name="Sam", phone=AGENT, status="available"), now)
    app.extensions["threadline.numbers"].put(
        SUPPORT, NumberConfig(label="US", brand="Acme", time_zone="America/New_York", agents=["sam"]), now)


def webhooks_through(proxy: Proxy) -> list[requests.Response]:
    """Twilio's requests through the proxy, each signed for the public https URL it asked for (query included)."""
    form = {"CallSid": "CA" + "1" * 32, "AccountSid": "AC" + "0" * 32, "From": CUSTOMER, "To": SUPPORT,
            "CallStatus": "ringing", "Direction": "inbound"}
    answers = []
    with requests.Session() as session:
        session.trust_env = False  # no proxy from the environment between us and ours
        for path in ("/voice/incoming", "/voice/code?" + urlencode({"attempt": "1", "number": SUPPORT})):
            signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}{path}", form)
            answers.append(session.post(f"{proxy.url}{path}", data=form, timeout=30,
                                        headers={"Host": "support.example.com", "X-Twilio-Signature": signature}))
    return answers


CARRIER = {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_API_BASE_URL": "http://127.0.0.1:9"}  # no public URL needed


@pytest.mark.parametrize(("env", "status"), [
    pytest.param(CARRIER, 403, id="the proxy untrusted: the app sees http and the signature fails"),
    pytest.param({**CARRIER, "FORWARDED_ALLOW_IPS": PROXY_ADDRESS}, 200, id="FORWARDED_ALLOW_IPS trusts the proxy"),
    pytest.param({"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "PUBLIC_BASE_URL": PUBLIC}, 200,
                 id="real Twilio with PUBLIC_BASE_URL"),
])
def test_a_webhook_through_a_tls_proxy_on_another_address(number, redis_url, tmp_path, env, status):
    log = tmp_path / "gunicorn.log"
    with gunicorn(redis_url, log, TWILIO_AUTH_TOKEN=TOKEN, **env) as port:
        proxy = Proxy(port)
        try:
            answers = webhooks_through(proxy)
        finally:
            proxy.shutdown()
            proxy.server_close()
    assert [a.status_code for a in answers] == [status, status], [a.text for a in answers]
    assert f'{PROXY_ADDRESS} ' in log.read_text()  # gunicorn's access log: the request came from the proxy
    if status == 200:
        for answer in answers:  # the next steps are asked for where Twilio reaches us, over https
            assert twiml_urls(answer.text) and not_absolute(answer.text, PUBLIC) == [], answer.text
