"""A claimed attempt is on Redis's disk before its call is placed, wherever Redis keeps an append-only file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from callbacks.schemas import Callback, Mode, State
from callbacks.store import CallbackStore
from core.redis_server import EmbeddedRedis, connect


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
    store = CallbackStore(client)
    store.create(a_callback("cb_1"))
    before = waitaof_calls(client)
    store.update("cb_1", noted("claimed"), durable=True)
    assert waitaof_calls(client) == before + 1
    store.update("cb_1", noted("not durable"))  # every other change goes at Redis's own pace
    assert waitaof_calls(client) == before + 1
    server.process.kill()  # SIGKILL: no shutdown, no final rewrite
    server.process.wait()
    server.start()
    assert CallbackStore(connect(server.url)).get("cb_1").reason in ("claimed", "not durable")


def test_without_an_append_only_file_a_durable_change_is_made_and_said_once(redis_client, caplog):
    store = CallbackStore(redis_client)
    store.create(a_callback("cb_2"))
    before = waitaof_calls(redis_client)
    for reason in ("first", "second", "third"):
        assert store.update("cb_2", noted(reason), durable=True).reason == reason
    assert store.get("cb_2").reason == "third"
    assert waitaof_calls(redis_client) - before == 1  # asked once, then known to be pointless on this server
    assert sum("keeps no append-only file" in r.getMessage() for r in caplog.records) == 1
