"""CallbackStore: callbacks in Redis, changed only by compare-and-set, with one live callback per thread."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import redis

from callbacks.schemas import LIVE, Callback, State
from context.events import WRITE_EVENTS, Event, Outbox
from core import keys
from core.extensions import Shared
from core.metrics import CALLBACK_ATTEMPTS, CALLBACK_STATES
from reports.counters import Count, DailyCounters

log = logging.getLogger(__name__)

# What the platform hears of a change: given the callback about to be written, the events written with it.
Announce = Callable[[Callback], Sequence[Event]]

# Both scripts keep the sweeper's indexes in step: KEYS due, dialing; ARGV due score, dialing score ('' = absent).
# Both write the change's events with it (write_events), after their own KEYS and ARGV.
_INDEXES = WRITE_EVENTS + """
local function index(key, member, score)
  if score == '' then redis.call('ZREM', key, member) else redis.call('ZADD', key, score, member) end
end
"""

# KEYS: pointer, callback, thread list, due, dialing, events...
# ARGV: id, doc, state, score, due, dialing, how many live states, the live states, events...
# Creates the callback unless the thread already has a live one; returns the id that is live.
_CREATE = _INDEXES + """
local live = tonumber(ARGV[7])
local current = redis.call('GET', KEYS[1])
if current then
  local state = redis.call('HGET', 'PREFIX' .. current, 'state')
  for i = 8, 7 + live do if state == ARGV[i] then return current end end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'doc', ARGV[2], 'state', ARGV[3], 'version', 1)
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
index(KEYS[4], ARGV[1], ARGV[5])
index(KEYS[5], ARGV[1], ARGV[6])
write_events(6, 8 + live)
return ARGV[1]
"""

# KEYS: callback, pointer, due, dialing, events... ARGV: expected version, doc, state, id, '1' if final, due,
# dialing, events...
_SWAP = _INDEXES + """
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'state', ARGV[3], 'version', tonumber(ARGV[1]) + 1)
if ARGV[5] == '1' and redis.call('GET', KEYS[2]) == ARGV[4] then redis.call('DEL', KEYS[2]) end
index(KEYS[3], ARGV[4], ARGV[6])
index(KEYS[4], ARGV[4], ARGV[7])
write_events(5, 8)
return 1
"""


# How long a durable write waits for Redis's disk (s): with appendfsync everysec the next fsync is within one second.
DURABLE_WAIT = 2.0
# How long a durable write waits for a replica's acknowledgement behind Sentinel (s): a replica acknowledges within
# milliseconds; one that can't (none left after a failover) costs each claim this much until one is back.
REPLICA_WAIT = 0.5


def _index_scores(callback: Callback) -> list[str]:
    """Where the callback stands for the sweeper: due (if scheduled) and claimed-but-not-placed (if dialing)."""
    due = str(callback.scheduled_for.timestamp()) if callback.state == State.scheduled else ""
    last = callback.attempts[-1] if callback.attempts else None
    active = callback.state in (State.dialing, State.in_call) and last is not None
    return [due, str(last.claimed_at.timestamp()) if active and last else ""]


class CallbackNotFound(LookupError):
    """No callback has that id."""


class Unchanged(Exception):
    """Raised by an update function to leave the callback as it is (the work is no longer wanted)."""


def new_id() -> str:
    return "cb_" + secrets.token_hex(10)


def _count(before: Callback, after: Callback) -> None:
    """The metrics of a change written: the state entered, the attempts it ended."""
    if after.state != before.state:
        CALLBACK_STATES.labels(after.state.value).inc()
    for i, attempt in enumerate(after.attempts):
        if attempt.outcome and (i >= len(before.attempts) or not before.attempts[i].outcome):
            CALLBACK_ATTEMPTS.labels(str(attempt.outcome)).inc()


def _reported(before: Callback | None, after: Callback) -> Count | None:
    """What the reports count of a change written: a callback requested, completed on its first attempt, or out of
    attempts."""
    if before is None:
        return Count.callbacks_requested
    if after.state == before.state:
        return None
    if after.state == State.completed and len(after.attempts) == 1:
        return Count.callbacks_first_attempt
    return Count.callbacks_exhausted if after.state == State.exhausted else None


class CallbackStore:
    def __init__(self, redis_client: redis.Redis, outbox: Outbox, reports: DailyCounters | None = None, *,
                 replicated: bool = False) -> None:
        self.redis, self.outbox, self.reports = redis_client, outbox, reports
        # Behind Sentinel: a durable write also waits for a replica (WAIT), since replication is asynchronous and a
        # failover promotes a replica that may lack the master's last writes: a claim it lacked would be dialled again.
        self.replicated = replicated
        self._unreplicated = False  # whether the last durable write went unacknowledged by any replica
        # The script reads the live callback's state by id; its key is built from the same prefix.
        self._create = redis_client.register_script(_CREATE.replace("'PREFIX'", repr(keys.callback(""))))
        self._swap = redis_client.register_script(_SWAP)
        self._aof: bool | None = None  # whether the server keeps an append-only file: learnt from WAITAOF

    def create(self, callback: Callback, announce: Announce | None = None) -> tuple[Callback, bool]:
        """Store a new callback and the events announce gives, unless the thread has a live one: that one, False."""
        staged = self.outbox.stage(announce(callback) if announce else [])
        live = self._create(
            keys=[keys.thread_live_callback(callback.thread_id), keys.callback(callback.id),
                  keys.thread_callbacks(callback.thread_id), keys.DUE_CALLBACKS, keys.DIALING_CALLBACKS,
                  *staged.keys],
            args=[callback.id, callback.model_dump_json(), callback.state.value,
                  int(callback.created_at.timestamp() * 1000), *_index_scores(callback), len(LIVE),
                  *[s.value for s in LIVE], *staged.args])
        if live == callback.id:
            self.outbox.send(staged)
            CALLBACK_STATES.labels(callback.state.value).inc()
            self._report(None, callback)
            return callback, True
        return self.get(live), False

    def _read(self, callback_id: str) -> tuple[Callback, str]:
        doc, version = self.redis.hmget(keys.callback(callback_id), "doc", "version")
        if doc is None:
            raise CallbackNotFound(callback_id)
        return Callback.model_validate_json(doc), version

    def get(self, callback_id: str) -> Callback:
        return self._read(callback_id)[0]

    def update(self, callback_id: str, change: Callable[[Callback], Callback],
               announce: Announce | None = None, *, durable: bool = False) -> Callback:
        """Apply change to the current callback atomically (retrying on a concurrent write), with its events.

        announce gives the events of the version about to be written; they are written in the same script, so a
        change and its events land together or not at all. change may raise Unchanged to leave the callback alone;
        update then returns it as it is, announcing nothing. durable: return only once the change is in Redis's
        append-only file on disk (WAITAOF), where Redis keeps one.
        """
        while True:
            current, version = self._read(callback_id)
            try:
                changed = change(current.model_copy(deep=True))
            except Unchanged:
                return current
            changed.updated_at = datetime.now(UTC)
            final = changed.state not in LIVE
            staged = self.outbox.stage(announce(changed) if announce else [])
            # One connection for the write and the wait: WAITAOF waits for that connection's own writes.
            with self.redis.pipeline(transaction=False) as pipe:
                self._swap(keys=[keys.callback(callback_id), keys.thread_live_callback(changed.thread_id),
                                 keys.DUE_CALLBACKS, keys.DIALING_CALLBACKS, *staged.keys],
                           args=[version, changed.model_dump_json(), changed.state.value, callback_id,
                                 "1" if final else "0", *_index_scores(changed), *staged.args], client=pipe)
                asked_aof = durable and self._aof is not False
                if asked_aof:
                    pipe.execute_command("WAITAOF", 1, 0, int(DURABLE_WAIT * 1000))
                if durable and self.replicated:
                    pipe.execute_command("WAIT", 1, int(REPLICA_WAIT * 1000))
                swapped, *waited = pipe.execute(raise_on_error=False)
            if isinstance(swapped, Exception):
                raise swapped
            if asked_aof:
                self._note_durability(waited.pop(0))
            if waited:
                self._note_replication(waited[0])
            if swapped:
                self.outbox.send(staged)
                _count(current, changed)
                self._report(current, changed)
                return changed

    def _report(self, before: Callback | None, after: Callback) -> None:
        """Count the change for the reports, once per callback (a count that fails is logged; the change stands)."""
        what = _reported(before, after)
        if self.reports is not None and what is not None:
            self.reports.count(after.number, {what: 1}, once=(after.id, what))

    def _note_durability(self, answer: object) -> None:
        """Learn from WAITAOF's answer whether this Redis keeps an append-only file; say so once when it doesn't."""
        if isinstance(answer, redis.ResponseError):
            if self._aof is None:
                log.warning("Redis keeps no append-only file: a claim cannot be made durable before its call "
                            "(%s)", answer)
            self._aof = False
        elif isinstance(answer, list) and answer and int(answer[0]) < 1:
            log.warning("Redis did not write a claim to disk within %s s; dialling anyway", DURABLE_WAIT)
        else:
            self._aof = True

    def _note_replication(self, answer: object) -> None:
        """Learn from WAIT's answer whether a replica has the claim; say so once when none has, once when one has
        again. The call is placed either way: holding every call while no replica is left stops all callbacks."""
        acknowledged = isinstance(answer, int) and answer >= 1
        if not acknowledged and not self._unreplicated:
            log.warning("no Redis replica acknowledged a claim within %s s (%s); dialling anyway: a failover now "
                        "could dial it again", REPLICA_WAIT, answer)
        elif acknowledged and self._unreplicated:
            log.info("a Redis replica acknowledges claims again")
        self._unreplicated = not acknowledged

    def live_for_thread(self, thread_id: str) -> Callback | None:
        callback_id = self.redis.get(keys.thread_live_callback(thread_id))
        if callback_id is None:
            return None
        callback = self.get(callback_id)
        return callback if callback.state in LIVE else None

    def for_thread(self, thread_id: str) -> list[Callback]:
        ids = self.redis.zrevrange(keys.thread_callbacks(thread_id), 0, 99)
        return [self.get(i) for i in ids]

    def soonest(self, limit: int) -> list[str]:
        """Scheduled callbacks, the soonest due first."""
        return self.redis.zrange(keys.DUE_CALLBACKS, 0, limit - 1)

    def due_by(self, until: float, limit: int = 500) -> list[tuple[str, float]]:
        """Scheduled callbacks due by `until` (epoch s) with their due times, the soonest first."""
        return self.redis.zrangebyscore(keys.DUE_CALLBACKS, "-inf", until, start=0, num=limit, withscores=True)

    def overdue(self, before: float, limit: int = 500) -> list[str]:
        """Scheduled callbacks due before `before` (epoch s), oldest first."""
        return self.redis.zrangebyscore(keys.DUE_CALLBACKS, "-inf", before, start=0, num=limit)

    def stuck(self, before: float, limit: int = 500) -> list[tuple[str, float]]:
        """Callbacks with an attempt under way (dialing or in a call) claimed, or last looked at, before `before`
        (epoch s), with that time."""
        return self.redis.zrangebyscore(keys.DIALING_CALLBACKS, "-inf", before, start=0, num=limit, withscores=True)

    def check_again_after(self, callback_id: str, at: float) -> None:
        """Look at an attempt under way again at `at` (its call is still live)."""
        self.redis.zadd(keys.DIALING_CALLBACKS, {callback_id: at}, xx=True)

    def remember_call(self, call_sid: str, callback_id: str, attempt: int) -> None:
        self.redis.set(keys.call_callback(call_sid), f"{callback_id}:{attempt}", ex=7 * 24 * 3600)

    def call_owner(self, call_sid: str) -> tuple[str, int] | None:
        """The callback and attempt a call was placed for."""
        owner = self.redis.get(keys.call_callback(call_sid))
        if owner is None:
            return None
        callback_id, attempt = owner.rsplit(":", 1)
        return callback_id, int(attempt)


CALLBACKS: Shared[CallbackStore] = Shared("callbacks")
