"""Liveness and readiness."""

from __future__ import annotations

from app import create_app
from core.redis_server import EmbeddedRedis


def test_healthz_and_readyz_report_ok(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["queue"] == {"name": "threadline", "jobs": 0, "workers": 0}


def test_readyz_is_503_when_redis_goes_away(tmp_path):
    server = EmbeddedRedis(tmp_path, appendonly=False)
    app = create_app({"TESTING": True, "REDIS_URL": server.start(), "THREADLINE_API_KEYS": ["k"]})
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    server.stop()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"
    assert client.get("/healthz").status_code == 200
