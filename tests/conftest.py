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
from tests.readme_support import fresh_clone

pytest_plugins = ["tests.browser", "tests.voice_support"]

API_KEY = "test-key-0123456789"

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


def thread_body(**changes: Any) -> dict[str, Any]:
    """A complete PUT body in the documented shape, with top-level fields replaced by changes."""
    body: dict[str, Any] = {
        "subject": "App crashes at login",
        "status": "open",
        "customer": {"id": "u-123", "name": "Jane Doe", "phone": "+1 415 555 0123", "email": "jane@example.com",
                     "locale": "en-US", "time_zone": "America/Los_Angeles"},
        "device": {"platform": "iOS", "os_version": "17.2", "app_version": "3.2.1", "model": "iPhone 14"},
        "metadata": {"plan": "pro", "order_id": "A-1009"},
        "messages": [{"id": "m1", "author": "customer", "name": "Jane", "text": "The app closes as soon as I log in",
                      "sent_at": "2026-11-22T10:00:00Z",
                      "attachments": [{"name": "crash.png", "url": "https://files.example.com/crash.png",
                                       "content_type": "image/png"}]}],
        "logs": [{"at": "2026-11-22T09:59:58Z", "level": "error",
                  "message": "NullPointerException in LoginViewController"}],
    }
    body.update(changes)
    return body


@pytest.fixture
def clone(tmp_path: Path) -> Iterator[Path]:
    """A fresh clone of the repository, as a new user has it, with a ready .venv."""
    yield from fresh_clone(tmp_path)
