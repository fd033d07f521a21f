"""Liveness and readiness probes, and the metrics."""

from __future__ import annotations

import hmac
import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST
from rq import Queue, Worker

from core import keys, metrics
from core.api import ApiError, respond
from core.extensions import QUEUE, REDIS
from core.instance import INSTANCE_HEADER
from core.liveness import alive
from core.outage import OUTAGE_ERRORS, reason
from core.redis_server import describe_config

bp = Blueprint("health", __name__)

STALE_SWEEP_AFTER = 5  # sweep periods without a sweep after which the clock counts as stuck


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
    """Ready when Redis answers, a worker's heartbeat is fresh and a clock holds the lease and sweeps; 503 with the
    reasons otherwise."""
    queue: Queue = QUEUE.get()
    client = REDIS.get()
    try:
        client.ping()
        workers = [w for w in Worker.all(queue=queue) if alive(client, keys.worker_alive(w.name))]
        holder = client.get(keys.CLOCK_LEASE)
        status = client.hgetall(keys.CLOCK_STATUS)
        jobs = queue.count
    except OUTAGE_ERRORS as exc:
        # Named as configured (a URL without its password, or the master and its Sentinels), never the password.
        where = describe_config(current_app.config)
        return jsonify(status="unavailable", redis=reason(exc),
                       reasons=[f"Redis cannot be reached ({where})"]), 503
    now = time.time()
    swept = float(status["swept_at"]) if holder and status.get("swept_at") else None
    clock = {"lease": "held" if holder else "free",
             "last_sweep_seconds_ago": round(now - swept, 1) if swept is not None else None}
    reasons = []
    if not workers:
        reasons.append("no worker is alive: nothing runs the dial and delivery jobs")
    if not holder:
        reasons.append("no clock holds the lease: due callbacks are not queued")
    elif swept is None or now - swept > STALE_SWEEP_AFTER * float(current_app.config["SWEEP_EVERY_SECONDS"]):
        reasons.append("the clock has not swept lately")
    body = {"redis": "ok", "queue": {"name": queue.name, "jobs": jobs, "workers": len(workers)}, "clock": clock}
    if reasons:
        return jsonify(status="not ready", reasons=reasons, **body), 503
    return jsonify(status="ready", **body)


@bp.get("/metrics")
def metrics_text() -> Response:
    """The metrics, to a bearer of THREADLINE_METRICS_TOKEN when it is set; to anyone when it is not."""
    token = current_app.config.get("THREADLINE_METRICS_TOKEN")
    if token:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return respond(ApiError(401, "unauthorized", "send the metrics token as 'Authorization: Bearer <token>'",
                                    "Authorization"))
        if not hmac.compare_digest(presented.strip().encode(), token.encode()):
            return respond(ApiError(401, "unauthorized", "the metrics token is not valid", "Authorization"))
    return Response(metrics.exposition(), content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
