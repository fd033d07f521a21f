"""Sign-in budgets per client behind a trusted proxy: X-Forwarded-For counts only past proxies FORWARDED_ALLOW_IPS
names, so one client behind the proxy cannot stop its colleagues, nor slip its own budget by writing the header."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from core import config
from directory.models import AgentConfig
from tests.support.desk import sign_in, with_password

PROXY = "10.0.0.1"


@pytest.fixture
def app(make_app: Any) -> Flask:
    app = make_app(SECRET_KEY="test-secret", FORWARDED_ALLOW_IPS=[PROXY, "10.9.0.0/16"])
    app.extensions["threadline.agents"].put("sam", AgentConfig(name="Sam Lee", phone="+14155550777"),
                                            datetime.now(UTC))
    with_password(app)
    return app


def from_address(app: Flask, peer: str, forwarded_for: str | None = None) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = peer
    if forwarded_for is not None:
        client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client


def spend_budget(client: FlaskClient) -> list[int]:
    """Nine failed sign-ins on nine ids (no id locks), then a tenth: the address's budget is nine a window."""
    return [sign_in(client, f"guess-{i}", "wrong password").status_code for i in range(10)]


def test_a_client_behind_the_proxy_spends_only_its_own_budget(app):
    assert spend_budget(from_address(app, PROXY, "203.0.113.7")) == [401] * 9 + [429]
    assert sign_in(from_address(app, PROXY, "203.0.113.8")).status_code == 303  # a colleague, same proxy
    assert sign_in(from_address(app, PROXY, "203.0.113.7")).status_code == 429


def test_what_the_client_writes_into_x_forwarded_for_does_not_count(app):
    assert spend_budget(from_address(app, PROXY, "203.0.113.7")) == [401] * 9 + [429]
    # The proxy appends the peer it saw: whatever the client put before it is not believed.
    assert sign_in(from_address(app, PROXY, "198.51.100.1, 203.0.113.7")).status_code == 429


def test_a_chain_of_trusted_proxies_is_walked_back_to_the_client(app):
    assert spend_budget(from_address(app, PROXY, "203.0.113.7, 10.9.4.2")) == [401] * 9 + [429]
    assert sign_in(from_address(app, PROXY, "203.0.113.7")).status_code == 429
    assert sign_in(from_address(app, PROXY, "203.0.113.9, 10.9.4.2")).status_code == 303


def test_a_peer_that_is_no_trusted_proxy_is_the_client_whatever_it_says(app):
    assert spend_budget(from_address(app, "192.0.2.50", "203.0.113.1")) == [401] * 9 + [429]
    assert sign_in(from_address(app, "192.0.2.50", "203.0.113.2")).status_code == 429
    assert sign_in(from_address(app, PROXY, "203.0.113.1")).status_code == 303


def test_the_trusted_proxies_come_from_the_variable_gunicorn_reads():
    assert config.load({"FORWARDED_ALLOW_IPS": "10.0.0.7, 10.1.0.0/16,"})["FORWARDED_ALLOW_IPS"] == \
        ["10.0.0.7", "10.1.0.0/16"]
    assert config.load({})["FORWARDED_ALLOW_IPS"] == ["127.0.0.1", "::1"]
