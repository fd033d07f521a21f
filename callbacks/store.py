"""CallbackStore: callbacks in Redis, changed only by compare-and-set, with one live callback per thread."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import redis

from callbacks.schemas import LIVE, Callback, State
from core import keys

# KEYS: pointer, callback, thread list. ARGV: id, doc, state, score, live states...
# Creates the callback unless the thread already has a live one; returns the id that is live.
_CREATE = """
local current = redis.call('GET', KEYS[1])
if current then
  local state = redis.call('HGET', 'PREFIX' .. current, 'state')
  for i = 5, #ARGV do if state == ARGV[i] then return current end end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'doc', ARGV[2], 'state', ARGV[3], 'version', 1)
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return ARGV[1]
"""

# KEYS: callback, pointer. ARGV: expected version, doc, state, id, '1' if the state is final.
_SWAP = """
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'state', ARGV[3], 'version', tonumber(ARGV[1]) + 1)
if ARGV[5] == '1' and redis.call('GET', KEYS[2]) == ARGV[4] then redis.call('DEL', KEYS[2]) end
return 1
"""


class CallbackNotFound(LookupError):
    """No callback has that id."""


class Unchanged(Exception):
    """Raised by an update function to leave the callback as it is (the work is no longer wanted)."""


def new_id() -> str:
    return "cb_" + secrets.token_hex(10)


class CallbackStore:
    def __init__(self, redis_client: redis.Redis) -> None:
        self.redis = redis_client
        # The script reads the live callback's state by id; its key is built from the same prefix.
        self._create = redis_client.register_script(_CREATE.replace("'PREFIX'", repr(keys.callback(""))))
        self._swap = redis_client.register_script(_SWAP)

    def create(self, callback: Callback) -> tuple[Callback, bool]:
        """Store a new callback, unless the thread has a live one: then that one, and False."""
        live = self._create(
            keys=[keys.thread_live_callback(callback.thread_id), keys.callback(callback.id),
                  keys.thread_callbacks(callback.thread_id)],
            args=[callback.id, callback.model_dump_json(), callback.state.value,
                  int(callback.created_at.timestamp() * 1000), *[s.value for s in LIVE]])
        if live == callback.id:
            return callback, True
        return self.get(live), False

    def _read(self, callback_id: str) -> tuple[Callback, str]:
        doc, version = self.redis.hmget(keys.callback(callback_id), "doc", "version")
        if doc is None:
            raise CallbackNotFound(callback_id)
        return Callback.model_validate_json(doc), version

    def get(self, callback_id: str) -> Callback:
        return self._read(callback_id)[0]

    def update(self, callback_id: str, change: Callable[[Callback], Callback]) -> Callback:
        """Apply change to the current callback atomically (retrying on a concurrent write).

        change may raise Unchanged to leave the callback alone; update then returns it as it is.
        """
        while True:
            current, version = self._read(callback_id)
            try:
                changed = change(current.model_copy(deep=True))
            except Unchanged:
                return current
            changed.updated_at = datetime.now(UTC)
            final = changed.state not in LIVE
            if self._swap(keys=[keys.callback(callback_id), keys.thread_live_callback(changed.thread_id)],
                          args=[version, changed.model_dump_json(), changed.state.value, callback_id,
                                "1" if final else "0"]):
                return changed

    def live_for_thread(self, thread_id: str) -> Callback | None:
        callback_id = self.redis.get(keys.thread_live_callback(thread_id))
        if callback_id is None:
            return None
        callback = self.get(callback_id)
        return callback if callback.state in LIVE else None

    def for_thread(self, thread_id: str) -> list[Callback]:
        ids = self.redis.zrevrange(keys.thread_callbacks(thread_id), 0, 99)
        return [self.get(i) for i in ids]

    def remember_call(self, call_sid: str, callback_id: str, attempt: int) -> None:
        self.redis.set(keys.call_callback(call_sid), f"{callback_id}:{attempt}", ex=7 * 24 * 3600)

    def call_owner(self, call_sid: str) -> tuple[str, int] | None:
        """The callback and attempt a call was placed for."""
        owner = self.redis.get(keys.call_callback(call_sid))
        if owner is None:
            return None
        callback_id, attempt = owner.rsplit(":", 1)
        return callback_id, int(attempt)


def is_final(state: State) -> bool:
    return state not in LIVE
