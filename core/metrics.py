"""Every Prometheus metric Threadline keeps, in one place, and their text (GET /metrics, core/health.py): summed over
every process that shares PROMETHEUS_MULTIPROC_DIR (gunicorn's workers, the RQ workers, the clock), else this one's.

prometheus_client reads PROMETHEUS_MULTIPROC_DIR when it is first imported: it must be in each process's environment
from its start (bin/run sets it; a Procfile deployment sets it itself). No label ever holds customer data."""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request

# A label-less metric writes its file when it is made, below: the directory must exist by then.
MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
if MULTIPROC_DIR:
    os.makedirs(MULTIPROC_DIR, exist_ok=True)

from prometheus_client import (  # noqa: E402  after the directory exists
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

WEBHOOK_PREFIX = "/voice/"  # Twilio's webhooks, inbound and callback calls alike
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)
_LATENESS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)

WEBHOOK_REQUESTS = Counter("threadline_webhook_requests_total", "Twilio webhook requests answered, by endpoint (the "
                           "URL rule) and HTTP status", ["endpoint", "status"])
WEBHOOK_SECONDS = Histogram("threadline_webhook_duration_seconds", "Time to answer a Twilio webhook, by endpoint and "
                            "HTTP status", ["endpoint", "status"], buckets=_LATENCY_BUCKETS)
INBOUND_CALLS = Counter("threadline_inbound_calls_total", "Inbound calls by where they went: matched (to the caller's "
                        "thread), code (a call code), general_line (no thread), closed (outside hours); voicemail "
                        "counts messages left", ["outcome"])
CALLBACK_STATES = Counter("threadline_callbacks_total", "Callbacks entering each state (scheduled, dialing, in_call, "
                          "completed, failed, exhausted, canceled)", ["state"])
CALLBACK_ATTEMPTS = Counter("threadline_callback_attempts_total", "Callback call attempts ended, by outcome",
                            ["outcome"])
DIAL_LATENESS = Histogram("threadline_callback_dial_lateness_seconds", "How long after its scheduled time a callback "
                          "attempt was placed", buckets=_LATENESS_BUCKETS)
RATE_LIMIT_WAITS = Counter("threadline_dial_rate_limit_waits_total", "Dials that waited for the calls-per-second limit")
RATE_LIMIT_WAIT_SECONDS = Counter("threadline_dial_rate_limit_wait_seconds_total", "Seconds dials waited for the "
                                  "calls-per-second limit")
SWEEP_RECOVERIES = Counter("threadline_sweep_recoveries_total", "What the clock's sweep recovered, by kind: requeued "
                           "(a lost dial job), reconciled (an attempt a dead worker or a lost status left), "
                           "redelivered (an event whose delivery job was lost)", ["kind"])
CLOCK_QUEUED = Counter("threadline_clock_queued_total", "What the clock queued when it fell due, by kind: callbacks "
                       "(their dial jobs), delayed_jobs (RQ's retries and scheduled jobs)", ["kind"])
UNDELIVERABLE_EVENTS = Counter("threadline_events_undeliverable_total", "Platform events given up on after their last "
                               "delivery retry")
DESK_STREAMS = Gauge("threadline_desk_streams_open", "Desk live streams open now", multiprocess_mode="livesum")
REDIS_ERRORS = Counter("threadline_redis_errors_total", "Web requests failed by Redis being unreachable, by error",
                       ["error"])


def _started() -> None:
    g.metrics_started = time.perf_counter()


def observe_webhook(endpoint: str, status: int, started: float) -> None:
    """One counter and one histogram per webhook request, labelled by its URL rule (never the path's values)."""
    WEBHOOK_REQUESTS.labels(endpoint, str(status)).inc()
    WEBHOOK_SECONDS.labels(endpoint, str(status)).observe(time.perf_counter() - started)


def _observed(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    rule = request.url_rule.rule if request.url_rule is not None else None
    if started is not None and (rule or request.path).startswith(WEBHOOK_PREFIX):
        observe_webhook(rule or "unmatched", response.status_code, started)
    return response


def exposition() -> bytes:
    """Every metric in Prometheus's text format: all processes' when they share a directory, else this one's."""
    if MULTIPROC_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, MULTIPROC_DIR)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def install(app: Flask) -> None:
    """Time every request from its start and count the webhooks' at their end."""
    app.before_request_funcs.setdefault(None, []).insert(0, _started)
    app.after_request(_observed)


def process_dead(pid: int) -> None:
    """gunicorn's child_exit: a worker gone takes its live gauges (open desk streams) with it."""
    if MULTIPROC_DIR:
        multiprocess.mark_process_dead(pid, MULTIPROC_DIR)
