"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint, current_app, jsonify
from rq import Queue, Worker

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Any:
    """Redis answers and the job queue can be read; says how many workers serve it."""
    queue: Queue = current_app.extensions["threadline.queue"]
    try:
        current_app.extensions["threadline.redis"].ping()
        checks = {"redis": "ok", "queue": {"name": queue.name, "jobs": queue.count,
                                          "workers": Worker.count(queue=queue)}}
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        return jsonify(status="unavailable", redis=str(exc).splitlines()[0]), 503
    return jsonify(status="ready", **checks)
