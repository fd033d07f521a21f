"""Liveness and readiness probes."""

from __future__ import annotations

import hmac
from typing import Any

import redis
from flask import Blueprint, current_app, jsonify, request
from rq import Queue, Worker

from core.extensions import QUEUE, REDIS
from core.instance import INSTANCE_HEADER

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    """The process is up; a correct run-command token is echoed (so a wrong guess learns nothing)."""
    response = jsonify(status="ok")
    mine, asked = current_app.config.get("THREADLINE_INSTANCE") or "", request.headers.get(INSTANCE_HEADER, "")
    if mine and hmac.compare_digest(mine, asked):
        response.headers[INSTANCE_HEADER] = mine
    return response


@bp.get("/readyz")
def readyz() -> Any:
    """Redis answers and the job queue can be read; says how many live workers serve it."""
    queue: Queue = QUEUE.get()
    try:
        REDIS.get().ping()
        # Worker.all drops a worker whose key expired (no heartbeat for --worker-ttl + 60 s: it died uncleanly);
        # Worker.count would still count it.
        checks = {"redis": "ok", "queue": {"name": queue.name, "jobs": queue.count,
                                          "workers": len(Worker.all(queue=queue))}}
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        return jsonify(status="unavailable", redis=str(exc).splitlines()[0]), 503
    return jsonify(status="ready", **checks)
