"""Fixtures: one real Redis for the session (embedded unless REDIS_URL is set), flushed around each test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from core.redis_server import EmbeddedRedis, connect
from tests.support.api import API_KEY
from tests.support.readme import fresh_clone

pytest_plugins = ["tests.support.admin", "tests.support.browser", "tests.support.carrier", "tests.support.events",
                  "tests.support.outage", "tests.support.suite_log", "tests.support.voice"]

# The Twilio library rewrites hosts when these are set; no test may depend on the caller's shell.
for _name in ("TWILIO_EDGE", "TWILIO_REGION"):
    os.environ.pop(_name, None)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis: REDIS_URL when given (it is flushed!), else the embedded server in a temp dir."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False)
    yield server.start()
    server.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def make_app(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Any:
    """Build a fresh app on the test Redis, with extra config overrides (its own var dir: never a live bin/run's)."""

    def make(**overrides: Any) -> Flask:
        config = {"TESTING": True, "REDIS_URL": redis_url, "THREADLINE_API_KEYS": [API_KEY], "VAR_DIR": str(tmp_path)}
        return create_app({**config, **overrides})

    return make


@pytest.fixture
def app(make_app: Any) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture
def clone(tmp_path: Path) -> Iterator[Path]:
    """A fresh clone of the repository, as a new user has it, with a ready .venv."""
    yield from fresh_clone(tmp_path)
