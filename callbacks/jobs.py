"""The app that RQ jobs and the clock run in: built once per environment from the factory the processes name.

The factory is named, as FLASK_APP names it for `flask`, so nothing in callbacks/ imports the modules above it.
"""

from __future__ import annotations

import functools
import importlib
import os

from flask import Flask

APP_FACTORY = "app:create_app"  # what the web process serves; THREADLINE_APP may name another
_APP_ENV_PREFIXES = ("REDIS_", "THREADLINE_", "TWILIO_", "PUBLIC_BASE_URL")


@functools.lru_cache(maxsize=4)
def _built(factory: str, environment: tuple[tuple[str, str], ...]) -> Flask:
    module, _, name = factory.partition(":")
    create_app = getattr(importlib.import_module(module), name)
    return create_app()


def job_app() -> Flask:
    """The app for jobs and the clock, from the same environment as the web process; built once per environment,
    so a worker builds it once and every job it runs uses it."""
    environment = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(_APP_ENV_PREFIXES)))
    return _built(os.environ.get("THREADLINE_APP", APP_FACTORY), environment)
