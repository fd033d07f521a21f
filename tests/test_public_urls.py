"""Where Twilio reaches Threadline: PUBLIC_BASE_URL checked at start, and absolute URLs in every call placed."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from callbacks.schemas import State
from core import config
from tests.support.callbacks import ask, callback, work
from tests.support.carrier import AGENT, CUSTOMER
from tests.support.voice import calls_to

TWILIO = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "x"}
CARRIER = {**TWILIO, "TWILIO_API_BASE_URL": "http://127.0.0.1:8700"}


@pytest.mark.parametrize(("settings", "refusal"), [
    (TWILIO, "PUBLIC_BASE_URL is not set"),
    ({**TWILIO, "PUBLIC_BASE_URL": "http://support.example.com"}, "PUBLIC_BASE_URL must start with https://"),
    ({**TWILIO, "PUBLIC_BASE_URL": "support.example.com"}, "PUBLIC_BASE_URL must be an absolute address"),
    ({**TWILIO, "PUBLIC_BASE_URL": "https://"}, "PUBLIC_BASE_URL must be an absolute address"),
    ({**TWILIO, "PUBLIC_BASE_URL": "https://support.example.com?x=1"}, "PUBLIC_BASE_URL must be an absolute"),
    ({**TWILIO, "PUBLIC_BASE_URL": "https://support.example.com:port"}, "PUBLIC_BASE_URL must be an absolute"),
    ({**CARRIER, "PUBLIC_BASE_URL": "/threadline"}, "PUBLIC_BASE_URL must be an absolute address"),
    ({**CARRIER, "PUBLIC_BASE_URL": "ftp://support.example.com"}, "PUBLIC_BASE_URL must be an absolute address"),
])
def test_a_public_url_twilio_could_not_use_is_refused_naming_it(settings: dict[str, str], refusal: str) -> None:
    with pytest.raises(config.ConfigError, match=f"^{refusal}"):
        config.check(config.load({}, {"PUBLIC_BASE_URL": None, **settings}))


@pytest.mark.parametrize("settings", [
    {},  # no Twilio at all
    CARRIER,  # the local carrier needs no public address
    {**CARRIER, "PUBLIC_BASE_URL": "http://127.0.0.1:8000"},
    {**TWILIO, "PUBLIC_BASE_URL": "https://support.example.com"},
    {**TWILIO, "PUBLIC_BASE_URL": "https://example.com:8443/threadline/"},
])
def test_a_usable_configuration_passes(settings: dict[str, str]) -> None:
    config.check(config.load({}, {"PUBLIC_BASE_URL": None, "TWILIO_ACCOUNT_SID": None, **settings}))


def test_a_callback_call_is_placed_with_absolute_urls_under_the_public_url(cb_line: Any) -> None:
    cb_line.script(CUSTOMER, answer="busy")
    ask(cb_line)
    work(cb_line)
    placed = cb_line.carrier.state.calls[calls_to(cb_line, CUSTOMER)[0]["sid"]]  # what calls.create sent
    assert placed.url.startswith(f"{cb_line.url}/voice/callback/answer?cb=")
    assert placed.status_callback.startswith(f"{cb_line.url}/voice/callback/status?cb=")


def test_agent_first_the_agents_call_is_placed_with_absolute_urls(cb_line: Any) -> None:
    cb_line.script(AGENT, answer="busy")
    ask(cb_line, mode="agent_first")
    work(cb_line)
    placed = cb_line.carrier.state.calls[calls_to(cb_line, AGENT)[0]["sid"]]
    assert placed.url.startswith(f"{cb_line.url}/voice/callback/agent?cb=")
    assert placed.status_callback.startswith(f"{cb_line.url}/voice/callback/status?cb=")


def test_without_a_public_url_a_worker_dials_nothing_and_the_attempt_is_kept(cb_line: Any, monkeypatch: Any,
                                                                            caplog: Any) -> None:
    monkeypatch.delenv("PUBLIC_BASE_URL")  # the worker's app: the carrier, and no address to give it
    created = ask(cb_line).get_json()
    with caplog.at_level(logging.ERROR, logger="callbacks.dialer"):
        work(cb_line)
    waiting = callback(cb_line, created["id"])
    assert (waiting.state, waiting.attempts) == (State.scheduled, [])
    assert calls_to(cb_line, CUSTOMER) == []
    assert [r.getMessage() for r in caplog.records if r.name == "callbacks.dialer"] == [
        f"callback {created['id']} attempt 1 not dialled, it stays scheduled: PUBLIC_BASE_URL is not set, so Twilio "
        "could not be told where to reach Threadline"]
