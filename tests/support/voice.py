"""Threadline served over real HTTP beside the local carrier, with a support number and agents configured."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask, Response, request
from twilio.request_validator import RequestValidator

from carrier.server import CarrierServer
from context.schemas import ThreadIn
from directory.models import AgentConfig, NumberConfig
from tests.support.api import API_KEY, thread_body
from tests.support.carrier import AGENT, SCALE, SUPPORT, Served, wait_until

ALWAYS = {"start": "00:00", "end": "24:00"}
OTHER_AGENT = "+14155550778"
# What a known caller (the thread_body customer) hears first on the line.
GREETING = "Hi Jane. Is this about App crashes at login? Press 1 or say yes, 2 or say no."
LAST_WROTE = "Your last message: The app closes as soon as I log in."


@dataclass
class Line:
    """A carrier, Threadline on HTTP, and helpers to script phones and read what happened."""

    carrier: CarrierServer
    app: Flask
    url: str
    answers: list[tuple[str, bytes]] = field(default_factory=list)  # (path, TwiML) of every TwiML answer

    def script(self, phone: str, **behaviour: Any) -> None:
        response = requests.put(f"{self.carrier.url}/_carrier/phones/{phone}", json=behaviour, timeout=5)
        assert response.status_code == 200, response.text

    def number(self, **changes: Any) -> None:
        config = {"label": "Acme Support US", "brand": "Acme", "language": "en-US", "voice": "Polly.Joanna",
                  "time_zone": "America/New_York", "agents": ["sam", "lee"], **changes}
        self.app.extensions["threadline.numbers"].put(SUPPORT, NumberConfig.model_validate(config),
                                                      datetime.now(UTC))

    def agent(self, agent_id: str, **config: Any) -> None:
        self.app.extensions["threadline.agents"].put(agent_id, AgentConfig.model_validate(config),
                                                     datetime.now(UTC))

    def thread(self, thread_id: str, **changes: Any) -> None:
        self.app.extensions["threadline.threads"].put(thread_id, ThreadIn.model_validate(thread_body(**changes)))

    def call_in(self, caller: str, to: str = SUPPORT) -> str:
        response = requests.post(f"{self.carrier.url}/_carrier/inbound", json={"from": caller, "to": to}, timeout=5)
        assert response.status_code == 201, response.text
        return response.json()["sid"]

    def finished(self, sid: str) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            call = requests.get(f"{self.carrier.url}/_carrier/calls/{sid}", timeout=5).json()
            over = ("completed", "busy", "failed", "no-answer", "canceled")
            return call if call["status"] in over and all(leg["status"] in over for leg in call["legs"]) else None
        return wait_until(done, message=f"call {sid} to end")

    def history(self, sid: str) -> Any:
        return wait_until(lambda: self.app.extensions["threadline.calls"].get(sid), message="the call record")


def signed_post(client: Any, path: str, form: dict[str, str], *, base: str, token: str,
                headers: dict[str, str] | None = None) -> Any:
    """POST form to path through a Flask test client as Twilio would: signed with token for base + path."""
    signature = RequestValidator(token).compute_signature(f"{base}{path}", form)
    return client.post(path, data=form, headers={"X-Twilio-Signature": signature, **(headers or {})})


def twiml_urls(body: str | bytes) -> list[str]:
    """Every URL a TwiML document hands Twilio: action, url, *Url and *Callback attributes, and Redirect's text."""
    urls = []
    for node in ET.fromstring(body).iter():
        urls += [value for name, value in node.attrib.items()
                 if name in ("action", "url") or name.endswith(("Url", "Callback"))]
        if node.tag == "Redirect":
            urls.append((node.text or "").strip())
    return urls


def not_absolute(body: str | bytes, base: str) -> list[str]:
    """The URLs in a TwiML document that are not absolute ones under base (Threadline's public address)."""
    return [url for url in twiml_urls(body)
            if not (urlsplit(url).scheme in ("http", "https") and url.startswith(f"{base}/"))]


def keep_answers(app: Flask, answers: list[tuple[str, bytes]]) -> None:
    """Keep every TwiML document the app answers with, to check later."""

    @app.after_request
    def keep(response: Response) -> Response:
        if response.mimetype == "text/xml":
            answers.append((request.full_path, response.get_data()))
        return response


@pytest.fixture
def line_config() -> dict[str, Any]:
    """Further app configuration for the line; a test module overrides this fixture to add some."""
    return {}


@pytest.fixture
def line(make_app: Any, line_config: dict[str, Any]) -> Iterator[Line]:
    with CarrierServer(scale=SCALE, numbers=(SUPPORT,)) as carrier:
        app = make_app(TWILIO_ACCOUNT_SID=carrier.state.account_sid, TWILIO_AUTH_TOKEN=carrier.state.auth_token,
                       TWILIO_API_BASE_URL=carrier.url, **line_config)
        served = Served(app)
        number = carrier.state.number_by_phone(SUPPORT)
        number.voice_url = f"{served.url}/voice/incoming"
        number.status_callback = f"{served.url}/voice/status"
        result = Line(carrier, app, served.url)
        keep_answers(app, result.answers)
        result.agent("sam", name="Sam Lee", phone=AGENT, status="available")
        result.agent("lee", name="Lee Park", phone=OTHER_AGENT, status="available")
        result.number()
        yield result
        served.stop()
        # Twilio needs absolute URLs: every flow any test drove through the line handed it only those.
        assert [(path, url) for path, body in result.answers for url in not_absolute(body, served.url)] == []


def calls_to(line: Line, phone: str) -> list[dict[str, Any]]:
    calls = requests.get(f"{line.carrier.url}/_carrier/calls", timeout=5).json()["calls"]
    return [c for c in calls if c["to"] == phone]


@pytest.fixture
def cb_line(line: Line, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[Line]:
    """The line, with the environment a worker process would have (the dial job builds its app from it)."""
    state = line.carrier.state
    for name, value in {"REDIS_URL": redis_url, "TWILIO_ACCOUNT_SID": state.account_sid,
                        "TWILIO_AUTH_TOKEN": state.auth_token, "TWILIO_API_BASE_URL": line.carrier.url,
                        "PUBLIC_BASE_URL": line.url, "THREADLINE_API_KEYS": API_KEY}.items():
        monkeypatch.setenv(name, value)
    line.app.config["PUBLIC_BASE_URL"] = line.url
    line.number(calling_window=ALWAYS)
    line.thread("t-1")
    yield line
