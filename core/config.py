"""Configuration layered as defaults, then the environment, then explicit overrides."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core import logs

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULTS: dict[str, Any] = {
    "REDIS_URL": None,  # None: the embedded Redis under VAR_DIR (unless Sentinels are named)
    # Redis behind Sentinel: the Sentinels' host:port list and the master's name; REDIS_URL is then left unset.
    "REDIS_SENTINELS": [],
    "REDIS_SENTINEL_MASTER": None,
    "REDIS_PASSWORD": None,  # the master's and replicas' password (requirepass), from the environment only
    "REDIS_SENTINEL_PASSWORD": None,  # the Sentinels' own password, when they ask for one
    # A Redis command unanswered this long fails (503 on the web) instead of holding the request: well inside
    # Twilio's 15 s webhook timeout, so a caller still hears our apology when Redis hangs.
    "REDIS_TIMEOUT_SECONDS": 5.0,
    "VAR_DIR": str(PROJECT_ROOT / "var"),
    "QUEUE_NAME": "threadline",
    "THREADLINE_API_KEYS": [],
    "THREADLINE_ADMIN_KEYS": [],
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "MAX_MESSAGES_PER_THREAD": 1000,
    "MAX_LOGS_PER_THREAD": 1000,
    "PUBLIC_BASE_URL": None,
    "TWILIO_ACCOUNT_SID": None,
    "TWILIO_AUTH_TOKEN": None,
    "TWILIO_API_BASE_URL": None,
    "DIAL_RATE_LIMIT": 1.0,  # outbound calls per second across all workers (Twilio's default)
    "SWEEP_GRACE_SECONDS": 2.0,  # a scheduled callback this overdue, with no live job, has lost its job
    "RECONCILE_AFTER_SECONDS": 60.0,  # a claimed attempt with no call after this: its worker died
    "SWEEP_EVERY_SECONDS": 1.0,
    # An attempt's call not heard of this long (since its claim or the last look) is asked about at Twilio: a call
    # rings at most 30 s, so by then its status callbacks have come, unless they were lost.
    "CALL_CHECK_SECONDS": 45.0,
    "THREADLINE_WEBHOOK_URL": None,
    "THREADLINE_WEBHOOK_SECRET": None,
    "SECRET_KEY": None,  # signs desk session cookies; random per process when unset
    "TWILIO_API_KEY_SID": None,
    "TWILIO_API_KEY_SECRET": None,
    "TWILIO_TWIML_APP_SID": None,  # the browser phone's outgoing calls; none: incoming only
    "THREADLINE_INSTANCE": None,  # set by the run command: /healthz proves to it that the web is the one it started
    # The proxies whose X-Forwarded-For names the client (the variable gunicorn reads for X-Forwarded-Proto).
    "FORWARDED_ALLOW_IPS": ["127.0.0.1", "::1"],
    "THREADLINE_METRICS_TOKEN": None,  # GET /metrics asks for it as a bearer token; unset: open
}


def _comma_list(value: str) -> list[str]:
    """Comma-separated text as its non-empty, trimmed items."""
    return [item.strip() for item in value.split(",") if item.strip()]


# Variables read from the environment, each with how its text becomes a value.
_ENV_PARSERS = {
    "REDIS_URL": str,
    "REDIS_SENTINELS": _comma_list,
    "REDIS_SENTINEL_MASTER": str,
    "REDIS_PASSWORD": str,
    "REDIS_SENTINEL_PASSWORD": str,
    "THREADLINE_REDIS_TIMEOUT": float,
    "THREADLINE_VAR_DIR": str,
    "THREADLINE_QUEUE": str,
    "THREADLINE_API_KEYS": _comma_list,
    "THREADLINE_ADMIN_KEYS": _comma_list,
    "PUBLIC_BASE_URL": lambda v: v.rstrip("/"),
    "TWILIO_ACCOUNT_SID": str,
    "TWILIO_AUTH_TOKEN": str,
    "TWILIO_API_BASE_URL": lambda v: v.rstrip("/"),
    "THREADLINE_DIAL_RATE": float,
    "THREADLINE_SWEEP_GRACE": float,
    "THREADLINE_RECONCILE_AFTER": float,
    "THREADLINE_SWEEP_EVERY": float,
    "THREADLINE_CALL_CHECK": float,
    "THREADLINE_WEBHOOK_URL": str,
    "THREADLINE_WEBHOOK_SECRET": str,
    "THREADLINE_SECRET_KEY": str,
    "TWILIO_API_KEY_SID": str,
    "TWILIO_API_KEY_SECRET": str,
    "TWILIO_TWIML_APP_SID": str,
    "THREADLINE_INSTANCE": str,
    "FORWARDED_ALLOW_IPS": _comma_list,
    "THREADLINE_METRICS_TOKEN": str,
}
_ENV_TO_CONFIG = {"THREADLINE_VAR_DIR": "VAR_DIR", "THREADLINE_REDIS_TIMEOUT": "REDIS_TIMEOUT_SECONDS",
                  "THREADLINE_QUEUE": "QUEUE_NAME", "THREADLINE_DIAL_RATE": "DIAL_RATE_LIMIT",
                  "THREADLINE_SWEEP_GRACE": "SWEEP_GRACE_SECONDS",
                  "THREADLINE_RECONCILE_AFTER": "RECONCILE_AFTER_SECONDS",
                  "THREADLINE_SWEEP_EVERY": "SWEEP_EVERY_SECONDS", "THREADLINE_CALL_CHECK": "CALL_CHECK_SECONDS",
                  "THREADLINE_SECRET_KEY": "SECRET_KEY"}


def embedded_redis_url(var_dir: str) -> str:
    """The URL of the embedded Redis that the run command starts under var_dir."""
    return f"unix://{Path(var_dir).resolve() / 'redis.sock'}"


def load(environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the configuration: defaults, then environment variables, then overrides."""
    environ = os.environ if environ is None else environ
    config = dict(DEFAULTS)
    for name, parse in _ENV_PARSERS.items():
        value = environ.get(name, "").strip()
        if value:
            config[_ENV_TO_CONFIG.get(name, name)] = parse(value)
    config.update(overrides or {})
    if not config["REDIS_URL"] and not config["REDIS_SENTINELS"]:
        config["REDIS_URL"] = embedded_redis_url(config["VAR_DIR"])
    return config


def uses_sentinel(config: Mapping[str, Any]) -> bool:
    """Whether Redis is found through Sentinel (REDIS_SENTINELS) rather than at REDIS_URL."""
    return bool(config.get("REDIS_SENTINELS"))


def sentinel_addresses(config: Mapping[str, Any]) -> list[tuple[str, int]]:
    """REDIS_SENTINELS as (host, port) pairs; ConfigError naming the setting and the bad item otherwise."""
    addresses = []
    listed = config.get("REDIS_SENTINELS") or []
    for item in _comma_list(listed) if isinstance(listed, str) else listed:  # an override may be written as in env
        host, sep, port = str(item).strip().rpartition(":")
        host = host.strip("[]")  # an IPv6 address is written [::1]:26379
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c.isspace() for c in host):
            raise ConfigError(f"REDIS_SENTINELS must list Sentinels as host:port, separated by commas (such as "
                              f"10.0.0.5:26379,10.0.0.6:26379), not {str(item)!r}")
        addresses.append((host, int(port)))
    return addresses


def _check_redis(config: Mapping[str, Any]) -> None:
    """Refuse a Redis setting that cannot work: Sentinels without a master name, or both ways of finding Redis."""
    if not uses_sentinel(config):
        if config.get("REDIS_SENTINEL_MASTER"):
            raise ConfigError("REDIS_SENTINEL_MASTER is set but REDIS_SENTINELS is not: name the Sentinels as "
                              "host:port, separated by commas")
        for name in ("REDIS_PASSWORD", "REDIS_SENTINEL_PASSWORD"):
            if config.get(name):  # it would be left unused, and Redis would refuse or, worse, not need it
                raise ConfigError(f"{name} is set but is used only with REDIS_SENTINELS: for one Redis, put its "
                                  "password in REDIS_URL (redis://:password@host:6379/0)")
        return
    sentinel_addresses(config)
    if not config.get("REDIS_SENTINEL_MASTER"):
        raise ConfigError("REDIS_SENTINEL_MASTER is not set: with REDIS_SENTINELS, name the master the Sentinels "
                          "watch (their `sentinel monitor <name> ...`)")
    if config.get("REDIS_URL"):
        raise ConfigError("REDIS_URL and REDIS_SENTINELS are both set: set REDIS_URL for one Redis, or "
                          "REDIS_SENTINELS and REDIS_SENTINEL_MASTER for Redis behind Sentinel, not both")


def web_warnings(config: Mapping[str, Any]) -> list[str]:
    """What a web process with this configuration lacks, in words: printed once by the web server (or bin/run)."""
    warnings = []
    if not config.get("SECRET_KEY"):
        warnings.append("THREADLINE_SECRET_KEY is not set: using a random key, so desk sign-ins end when the web "
                        "process restarts and are not shared between instances")
    if not config.get("THREADLINE_API_KEYS"):
        warnings.append("THREADLINE_API_KEYS is not set: the API refuses every request until it is")
    if not config.get("THREADLINE_METRICS_TOKEN"):
        warnings.append("THREADLINE_METRICS_TOKEN is not set: /metrics is open to anyone who can reach the web "
                        "process")
    return warnings


class ConfigError(ValueError):
    """A setting that would make Threadline fail later, named with what to set instead."""


def uses_real_twilio(config: Mapping[str, Any]) -> bool:
    """Whether calls go to Twilio itself: an account is set and no other API (such as the local carrier) is named."""
    return bool(config.get("TWILIO_ACCOUNT_SID")) and not config.get("TWILIO_API_BASE_URL")


def check(config: Mapping[str, Any]) -> None:
    """Refuse a configuration that would fail silently later: raise ConfigError naming the setting."""
    _check_redis(config)
    base = config.get("PUBLIC_BASE_URL")
    example = "such as https://support.example.com"
    if not base:
        if uses_real_twilio(config):
            raise ConfigError("PUBLIC_BASE_URL is not set: with Twilio it is required, the https address Twilio "
                              f"reaches Threadline at, {example}")
        return
    parts = urlsplit(str(base))
    try:
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number
        valid = False
    if not valid or parts.query or parts.fragment or any(c.isspace() for c in str(base)):
        raise ConfigError(f"PUBLIC_BASE_URL must be an absolute address {example}, not {base!r}")
    if uses_real_twilio(config) and parts.scheme != "https":
        raise ConfigError(f"PUBLIC_BASE_URL must start with https:// with Twilio (Twilio signs and sends "
                          f"webhooks to it), not {base!r}")


def exit_if_invalid(config: Mapping[str, Any]) -> None:
    """check(config), turning its refusal into one line and a non-zero exit, with no traceback."""
    try:
        check(config)
    except ConfigError as exc:
        logs.exit_with(f"threadline: {exc}")
