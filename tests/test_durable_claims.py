"""A claimed attempt is on Redis's disk before its call is placed, wherever Redis keeps an append-only file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from rq import Queue

from callbacks.schemas import Callback, Mode, State
from callbacks.store import CallbackStore
from context.events import Outbox
from core.redis_server import EmbeddedRedis, connect


def store_on(client: redis.Redis) -> CallbackStore:
    """A callback store on client, its events kept undelivered (these changes announce none)."""
    queue = Queue("durable", connection=redis.Redis(connection_pool=client.connection_pool))
    return CallbackStore(client, Outbox(client, queue, None, None))


def waitaof_calls(client: redis.Redis) -> int:
    return int(client.info("commandstats").get("cmdstat_waitaof", {}).get("calls", 0))


def a_callback(callback_id: str) -> Callback:
    now = datetime.now(UTC)
    return Callback(id=callback_id, thread_id=f"t-{callback_id}", state=State.scheduled, mode=Mode.customer_first,
                    number="+14155550100", phone="+14155550123", callee_zone="America/New_York",
                    scheduled_for=now, customer_local_time="now", created_at=now, updated_at=now)


def noted(reason: str):
    def change(callback: Callback) -> Callback:
        callback.reason = reason
        return callback
    return change


@pytest.fixture
def aof_redis(tmp_path: Path):
    server = EmbeddedRedis(tmp_path, appendonly=True)
    client = connect(server.start())
    # As a production Redis is commonly set: fsync once a second, so only WAITAOF makes one write durable at once.
    client.config_set("appendfsync", "everysec")
    yield server, client
    client.close()
    server.stop()


def test_a_durable_change_waits_for_the_append_only_file_on_its_own_connection(aof_redis):
    server, client = aof_redis
    store = store_on(client)
    store.create(a_callback("cb_1"))
    before = waitaof_calls(client)
    store.update("cb_1", noted("claimed"), durable=True)
    assert waitaof_calls(client) == before + 1
    store.update("cb_1", noted("not durable"))  # every other change goes at Redis's own pace
    assert waitaof_calls(client) == before + 1
    server.process.kill()  # SIGKILL: no shutdown, no final rewrite
    server.process.wait()
    server.start()
    assert store_on(connect(server.url)).get("cb_1").reason in ("claimed", "not durable")


def test_without_an_append_only_file_a_durable_change_is_made_and_said_once(redis_client, caplog):
    store = store_on(redis_client)
    store.create(a_callback("cb_2"))
    before = waitaof_calls(redis_client)
    for reason in ("first", "second", "third"):
        assert store.update("cb_2", noted(reason), durable=True).reason == reason
    assert store.get("cb_2").reason == "third"
    assert waitaof_calls(redis_client) - before == 1  # asked once, then known to be pointless on this server
    assert sum("keeps no append-only file" in r.getMessage() for r in caplog.records) == 1


def test_behind_sentinel_a_durable_change_also_waits_for_a_replica_and_says_once_when_none_answers(redis_client,
                                                                                                   caplog):
    queue = Queue("durable", connection=redis.Redis(connection_pool=redis_client.connection_pool))
    store = CallbackStore(redis_client, Outbox(redis_client, queue, None, None), replicated=True)
    store.create(a_callback("cb_3"))
    calls = int(redis_client.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))
    for reason in ("first", "second"):  # this Redis has no replica: each claim waits REPLICA_WAIT, then goes on
        assert store.update("cb_3", noted(reason), durable=True).reason == reason
    store.update("cb_3", noted("not durable"))
    assert int(redis_client.info("commandstats")["cmdstat_wait"]["calls"]) == calls + 2
    assert sum("no Redis replica acknowledged a claim" in r.getMessage() for r in caplog.records) == 1
