"""ThreadStore: threads, their messages and logs in Redis, indexed by the customer's phone."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from context.schemas import LogEntry, Message, Thread, ThreadAttributes, ThreadIn, ThreadStatus, ThreadSummary, of_brand
from core import keys
from core.extensions import Shared

# KEYS: thread, messages, order. ARGV: message id, message JSON, score, max kept, '1' to replace.
# Returns -1 when the thread is missing, 1 when added, 2 when replaced, else the JSON already stored under that id.
_APPEND_MESSAGE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing and ARGV[5] ~= '1' then return existing end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
local excess = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[4])
if excess > 0 then
  local oldest = redis.call('ZRANGE', KEYS[3], 0, excess - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, excess - 1)
  redis.call('HDEL', KEYS[2], unpack(oldest))
end
if existing then return 2 end
return 1
"""

# KEYS: thread, logs. ARGV: max kept, then entries. Returns -1 when the thread is missing, else the count kept.
_APPEND_LOGS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('RPUSH', KEYS[2], unpack(ARGV, 2))
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[1]), -1)
return redis.call('LLEN', KEYS[2])
"""


# A caller's open threads are read this many at a time when filtering by brand, and no further than BRAND_SCAN:
# enough for any real customer, bounded for a number that has collected thousands of threads.
BRAND_PAGE = 20
BRAND_SCAN = 200


class ThreadNotFound(LookupError):
    """No thread has that id."""


class MessageConflict(Exception):
    """A message id already holds different content."""


@dataclass(frozen=True)
class Appended:
    message: Message
    created: bool


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _from_ms(value: str | int) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def _compact(model: Message | LogEntry) -> str:
    return model.model_dump_json(exclude_defaults=True)


class ThreadStore:
    """Reads and writes threads; every write keeps the phone index in step."""

    def __init__(self, redis_client: redis.Redis, *, max_messages: int = 1000, max_logs: int = 1000) -> None:
        self.redis = redis_client
        self.max_messages = max_messages
        self.max_logs = max_logs
        self._append_message = redis_client.register_script(_APPEND_MESSAGE)
        self._append_logs = redis_client.register_script(_APPEND_LOGS)

    def put(self, thread_id: str, thread: ThreadIn, now: datetime | None = None) -> bool:
        """Replace a thread's attributes, upsert its messages by id and add its logs; True when created.

        Messages and logs already stored and absent from the body are kept: a PUT never loses them.
        """
        now = now or datetime.now(UTC)
        created = self._write_attributes(thread_id, thread, _ms(now))
        if thread.messages:
            self._merge_messages(thread_id, thread.messages, replace=True)
        if thread.logs:
            self.append_logs(thread_id, thread.logs)
        return created

    def _write_attributes(self, thread_id: str, attributes: ThreadAttributes, now_ms: int) -> bool:
        key = keys.thread(thread_id)
        doc = attributes.model_dump_json(include=set(ThreadAttributes.model_fields), exclude_defaults=True)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    old_phone, old_status, created_ms, activity = pipe.hmget(
                        key, "phone", "status", "created_at", "last_activity")
                    activity_ms = max(int(activity or 0), now_ms)
                    pipe.multi()
                    if old_phone:
                        pipe.zrem(keys.phone_threads(old_phone, resolved=old_status == ThreadStatus.resolved.value),
                                  thread_id)
                    pipe.hset(key, mapping={
                        "doc": doc, "phone": attributes.customer.phone, "brand": attributes.brand or "",
                        "status": attributes.status.value, "created_at": created_ms or now_ms,
                        "updated_at": now_ms, "last_activity": activity_ms,
                    })
                    self._index(pipe, thread_id, attributes.customer.phone, attributes.status.value, activity_ms)
                    pipe.execute()
                    return created_ms is None
                except redis.WatchError:
                    continue

    @staticmethod
    def _index(pipe: redis.client.Pipeline, thread_id: str, phone: str, status: str, activity_ms: int) -> None:
        resolved = status == ThreadStatus.resolved.value
        pipe.zadd(keys.phone_threads(phone, resolved=resolved), {thread_id: activity_ms})

    def _touch(self, thread_id: str, activity_ms: int) -> None:
        """Move the thread's last activity forward (never back) and its place in the phone index with it."""
        key = keys.thread(thread_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    phone, status, activity = pipe.hmget(key, "phone", "status", "last_activity")
                    if phone is None or int(activity or 0) >= activity_ms:
                        return
                    pipe.multi()
                    pipe.hset(key, "last_activity", activity_ms)
                    self._index(pipe, thread_id, phone, status, activity_ms)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def _merge_messages(self, thread_id: str, messages: Iterable[Message], *, replace: bool) -> list[Appended]:
        messages = list(messages)
        script_keys = [keys.thread(thread_id), keys.thread_messages(thread_id), keys.thread_message_order(thread_id)]
        with self.redis.pipeline(transaction=False) as pipe:
            for message in messages:
                self._append_message(
                    keys=script_keys,
                    args=[message.id, _compact(message), _ms(message.sent_at), self.max_messages, int(replace)],
                    client=pipe)
            results = pipe.execute()
        if -1 in results:
            raise ThreadNotFound(thread_id)
        appended = []
        for message, result in zip(messages, results, strict=True):
            if result in (1, 2):
                appended.append(Appended(message, result == 1))
            elif result == _compact(message):
                appended.append(Appended(message, False))
            else:
                raise MessageConflict(message.id)
        if any(a.created for a in appended):
            self._touch(thread_id, max(_ms(a.message.sent_at) for a in appended if a.created))
        return appended

    def append_message(self, thread_id: str, message: Message) -> Appended:
        """Add a message unless its id is already there; an id holding other content is a MessageConflict."""
        return self._merge_messages(thread_id, [message], replace=False)[0]

    def append_logs(self, thread_id: str, entries: Iterable[LogEntry]) -> int:
        """Add log entries, keeping the newest max_logs; return how many the thread now holds."""
        docs = [_compact(entry) for entry in entries]
        kept = self._append_logs(keys=[keys.thread(thread_id), keys.thread_logs(thread_id)],
                                 args=[self.max_logs, *docs])
        if kept == -1:
            raise ThreadNotFound(thread_id)
        return int(kept)

    def get(self, thread_id: str, *, newest: int | None = None) -> Thread:
        """Return the thread: attributes, messages oldest first, logs by time.

        With `newest`, only that many of the latest messages and no logs: what a voice prompt needs, cheaply.
        """
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.thread(thread_id))
            if newest is None:
                pipe.zrange(keys.thread_message_order(thread_id), 0, -1)
                pipe.hgetall(keys.thread_messages(thread_id))
                pipe.lrange(keys.thread_logs(thread_id), 0, -1)
                header, order, messages, logs = pipe.execute()
            else:
                pipe.zrange(keys.thread_message_order(thread_id), -newest, -1)
                header, order = pipe.execute()
                docs = self.redis.hmget(keys.thread_messages(thread_id), order) if order and header else []
                messages, logs = dict(zip(order, docs, strict=True)), []
        if not header:
            raise ThreadNotFound(thread_id)
        entries = sorted((LogEntry.model_validate_json(doc) for doc in logs), key=lambda e: e.at)
        return Thread(**self._attributes(thread_id, header),
                      messages=[Message.model_validate_json(messages[mid]) for mid in order if messages.get(mid)],
                      logs=entries)

    @staticmethod
    def _attributes(thread_id: str, header: dict[str, str]) -> dict[str, object]:
        return {**json.loads(header["doc"]), "id": thread_id, "created_at": _from_ms(header["created_at"]),
                "updated_at": _from_ms(header["updated_at"]), "last_activity_at": _from_ms(header["last_activity"])}

    def open_thread_ids(self, e164: str, limit: int = 20) -> list[str]:
        """Ids of the phone's threads that are not resolved, newest activity first."""
        return self.redis.zrevrange(keys.phone_threads(e164, resolved=False), 0, limit - 1)

    def open_thread_ids_of_brand(self, e164: str, brand: str, limit: int) -> list[str]:
        """Like open_thread_ids, keeping only threads of that brand (any letter case) or of no brand."""
        found: list[str] = []
        start = 0
        while len(found) < limit and start < BRAND_SCAN:
            ids = self.redis.zrevrange(keys.phone_threads(e164, resolved=False), start, start + BRAND_PAGE - 1)
            if not ids:
                break
            with self.redis.pipeline(transaction=False) as pipe:
                for thread_id in ids:
                    pipe.hmget(keys.thread(thread_id), "phone", "brand")
                headers = pipe.execute()
            found += [i for i, (phone, b) in zip(ids, headers, strict=True)
                      if phone and of_brand(b, brand)]
            start += BRAND_PAGE
        return found[:limit]

    def find_by_phone(self, e164: str, limit: int = 20) -> list[ThreadSummary]:
        """The phone's threads: open ones first, each group newest activity first."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrevrange(keys.phone_threads(e164, resolved=False), 0, limit - 1)
            pipe.zrevrange(keys.phone_threads(e164, resolved=True), 0, limit - 1)
            open_ids, resolved_ids = pipe.execute()
        ids = (open_ids + resolved_ids)[:limit]
        if not ids:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for thread_id in ids:
                pipe.hgetall(keys.thread(thread_id))
                pipe.zcard(keys.thread_message_order(thread_id))
            replies = pipe.execute()
        return [ThreadSummary(**self._attributes(thread_id, header), message_count=count)
                for thread_id, header, count in zip(ids, replies[::2], replies[1::2], strict=True) if header]


THREADS: Shared[ThreadStore] = Shared("threads")
