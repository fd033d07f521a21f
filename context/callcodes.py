"""Six-digit call codes the app shows, so a caller from another phone can name their thread."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import redis

from core import keys
from core.extensions import Shared

CODE_TTL = timedelta(minutes=15)


class CallCodes:
    """Codes live in Redis with a TTL and are taken once (GETDEL), so a code can't be replayed."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self.redis = redis_client

    def issue(self, thread_id: str) -> tuple[str, datetime]:
        """A fresh code for the thread, valid for CODE_TTL."""
        while True:
            code = f"{secrets.randbelow(1_000_000):06d}"
            if self.redis.set(keys.call_code(code), thread_id, nx=True, ex=int(CODE_TTL.total_seconds())):
                return code, datetime.now(UTC) + CODE_TTL

    def redeem(self, code: str) -> str | None:
        """The thread the code stands for, once; None when unknown, expired or used."""
        if not (len(code) == 6 and code.isdigit()):
            return None
        return self.redis.getdel(keys.call_code(code))


CALL_CODES: Shared[CallCodes] = Shared("callcodes")
