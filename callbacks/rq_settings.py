"""Settings for rq's own command line (the Procfile's `rq worker --config callbacks.rq_settings`): where rq's
connection goes when `--url` is empty, which is when Redis sits behind Sentinel.

With REDIS_URL set, rq takes `--url "$REDIS_URL"` and reads nothing here but the same URL. Without either, rq would
fall back to a Redis on localhost:6379, some other program's; this names the embedded one instead, as the app does.
"""

from __future__ import annotations

from typing import Any

from core import config
from core.redis_server import SENTINEL_TIMEOUT

_settings = config.load()
config.exit_if_invalid(_settings)  # a bad REDIS_SENTINELS stops rq with one line naming it, not a traceback

if config.uses_sentinel(_settings):
    # rq's Sentinel settings (rq.cli.helpers.get_redis_from_config): the master's connections through the Sentinels,
    # redis-py's SentinelConnectionPool, which follows a failover as the app's clients do.
    SENTINEL: dict[str, Any] = {
        "INSTANCES": config.sentinel_addresses(_settings),
        "MASTER_NAME": _settings["REDIS_SENTINEL_MASTER"],
        "PASSWORD": _settings["REDIS_PASSWORD"],
        "CONNECTION_KWARGS": {"socket_connect_timeout": 3, "health_check_interval": 30},
        "SENTINEL_KWARGS": {"password": _settings["REDIS_SENTINEL_PASSWORD"], "socket_timeout": SENTINEL_TIMEOUT,
                            "socket_connect_timeout": SENTINEL_TIMEOUT},
    }
else:
    REDIS_URL: str = _settings["REDIS_URL"]
