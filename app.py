"""The Threadline application factory."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, redirect, url_for
from rq import Queue
from werkzeug.wrappers import Response

from callbacks import dialer
from callbacks.api import bp as callbacks_bp
from callbacks.store import CALLBACKS, CallbackStore
from context.api import bp as threads_bp
from context.api import thread_resolved
from context.callcodes import CALL_CODES, CallCodes
from context.events import OUTBOX, Outbox
from context.events_api import bp as events_bp
from context.store import THREADS, ThreadStore
from core import config as config_module
from core import logs, metrics, request_log
from core.api import ApiError, register_error_handlers, respond
from core.extensions import QUEUE, REDIS, TWILIO
from core.health import bp as health_bp
from core.openapi import docs_bp
from core.redis_server import RedisUnavailable, describe_config, open_client
from desk import bp as desk_bp
from desk.auth import configure_sessions
from desk.passwords import forget_agent
from directory.service import DIRECTORY, Directory, DirectoryError
from directory.store import AGENTS, DIRECTORY_CACHE, NUMBERS, AgentStore, DirectoryCache, NumberStore
from reports.counters import REPORTS, DailyCounters
from voice.admin_api import bp as admin_bp
from voice.callback_calls import bp as voice_callbacks_bp
from voice.calls import CALLS, CallStore
from voice.cli import agents_cli, numbers_cli
from voice.fast_lane import FastLane
from voice.history import bp as calls_bp
from voice.inbound import INBOUND, InboundCalls
from voice.recordings import bp as voice_recordings_bp
from voice.survey import bp as voice_survey_bp
from voice.twilio_client import make_client
from voice.webhooks import bp as voice_bp

log = logging.getLogger("threadline")


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: configuration, Redis, the RQ queue, stores and blueprints."""
    app = Flask(__name__)
    app.json.sort_keys = False  # keep the documented field order
    app.config.update(config_module.load(overrides=overrides))
    config_module.exit_if_invalid(app.config)  # first: one line naming the setting, before anything else is said
    configure_sessions(app)
    timeout = app.config["REDIS_TIMEOUT_SECONDS"]
    try:
        redis_client = open_client(app.config, timeout=timeout)
    except RedisUnavailable as exc:
        # One line, no traceback: SystemExit with a message is printed as is.
        hint = ("check REDIS_SENTINELS and REDIS_SENTINEL_MASTER" if config_module.uses_sentinel(app.config)
                else "start Threadline with bin/run, or set REDIS_URL")
        logs.exit_with(f"threadline: {exc} ({hint})")
    REDIS.install(app, redis_client)
    rq_connection = open_client(app.config, check=False, decode=False, timeout=timeout)
    queue = QUEUE.install(app, Queue(app.config["QUEUE_NAME"], connection=rq_connection))
    THREADS.install(app, ThreadStore(redis_client, max_messages=app.config["MAX_MESSAGES_PER_THREAD"],
                                     max_logs=app.config["MAX_LOGS_PER_THREAD"]))
    directory = DIRECTORY.install(app, Directory(NumberStore(redis_client), AgentStore(redis_client),
                                                 forget_agent=functools.partial(forget_agent, redis_client)))
    NUMBERS.install(app, directory.numbers)
    AGENTS.install(app, directory.agents)
    DIRECTORY_CACHE.install(app, DirectoryCache(directory.numbers))
    # Every event is written by the store whose change it reports (in the same transaction): they share the outbox.
    outbox = OUTBOX.install(app, Outbox(redis_client, queue, app.config["THREADLINE_WEBHOOK_URL"],
                                        app.config["THREADLINE_WEBHOOK_SECRET"]))
    CALLS.install(app, CallStore(redis_client, outbox))
    CALL_CODES.install(app, CallCodes(redis_client))
    INBOUND.install(app, InboundCalls(redis_client))
    reports = REPORTS.install(app, DailyCounters(redis_client, directory.numbers))
    # Behind Sentinel a claim must reach a replica before its call is placed: a failover loses what it had not.
    CALLBACKS.install(app, CallbackStore(redis_client, outbox, reports,
                                         replicated=config_module.uses_sentinel(app.config)))
    sid, token = app.config["TWILIO_ACCOUNT_SID"], app.config["TWILIO_AUTH_TOKEN"]
    TWILIO.install(app, make_client(sid, token, app.config["TWILIO_API_BASE_URL"]) if sid and token else None)
    register_error_handlers(app)
    request_log.install(app)
    metrics.install(app)
    app.register_error_handler(DirectoryError, _refused)
    for blueprint in (health_bp, docs_bp, threads_bp, events_bp, calls_bp, admin_bp, callbacks_bp, voice_bp,
                      voice_callbacks_bp, voice_recordings_bp, voice_survey_bp, desk_bp):
        app.register_blueprint(blueprint)
    app.add_url_rule("/", "home", _home)
    app.wsgi_app = FastLane(app)  # type: ignore[method-assign]  # a call in's first webhook, ahead of Flask
    thread_resolved.connect(_cancel_callbacks, app, weak=False)
    app.cli.add_command(numbers_cli)
    app.cli.add_command(agents_cli)
    log.info("threadline ready: Redis %s, queue %s", describe_config(app.config), app.config["QUEUE_NAME"])
    return app


def _home() -> Response:
    """The site's root leads people to the desk."""
    return redirect(url_for("desk.home"))


def _refused(exc: DirectoryError) -> Response:
    """A directory operation refused during a request: answered as every API error is."""
    return respond(ApiError(exc.status, exc.code, exc.message, exc.field, exc.details))


def _cancel_callbacks(app: Flask, thread_id: str) -> None:
    """A resolved thread needs no callback."""
    dialer.cancel_for_thread(thread_id, "the thread was resolved")
