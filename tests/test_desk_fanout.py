"""The desk's fan-out: open event streams share one subscription and the process's Redis connections, under the
threaded server and under the Procfile's gevent web process; they end with their session; Redis restarts pass."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from flask import Flask

from core import keys
from core.redis_server import POOL_SIZE, EmbeddedRedis, connect
from desk.fanout import SLICES, TICK_SECONDS, Fanout, Signal
from desk.sessions import DeskSessions
from directory.models import AgentConfig
from tests.support.carrier import Served
from tests.support.desk import EventStream, sign_in, sign_in_over_http, with_password
from tests.support.outage import redis_away
from tests.support.processes import ROOT, gunicorn
from voice.screenpop import publish

SECRET = "fanout-test-secret"
STREAMS = 3 * POOL_SIZE


def with_agents(app: Flask) -> Flask:
    """sam and kim, each with a desk password."""
    now = datetime.now(UTC)
    for agent, phone in (("sam", "+14155550777"), ("kim", "+14155550778")):
        app.extensions["threadline.agents"].put(agent, AgentConfig(name=agent.title(), phone=phone,
                                                                   status="available"), now)
        with_password(app, agent)
    return app


@pytest.fixture
def app(make_app: Any) -> Flask:
    return with_agents(make_app(SECRET_KEY=SECRET))


@contextmanager
def threaded(app: Flask, tmp_path: Path) -> Iterator[str]:
    served = Served(app)
    try:
        yield served.url
    finally:
        served.stop()


@contextmanager
def procfile_web(app: Flask, tmp_path: Path) -> Iterator[str]:
    with gunicorn(app.config["REDIS_URL"], tmp_path / "gunicorn.log", THREADLINE_SECRET_KEY=SECRET) as port:
        yield f"http://127.0.0.1:{port}"


def newest_client(client: redis.Redis) -> int:
    """The id Redis gave its latest connection (ids only grow)."""
    return max(int(c["id"]) for c in client.client_list())


def clients_since(client: redis.Redis, newest: int) -> int:
    """Connections open now that were made after the one of id newest (the suite's Redis is shared)."""
    return sum(int(c["id"]) > newest for c in client.client_list())


def pop_of(frame: str | None) -> str:
    """The call SID a screen-pop frame carries."""
    assert frame is not None and "event: screen_pop" in frame, frame
    return frame.split('"call_sid":"', 1)[1].split('"', 1)[0]


@pytest.mark.parametrize("serve", [threaded, procfile_web], ids=["threaded server", "gunicorn gevent"])
def test_open_streams_share_one_subscription_and_the_connections_do_not_grow_with_them(
        app: Flask, redis_client: redis.Redis, tmp_path: Path, serve: Callable[..., Any]) -> None:
    newest = newest_client(redis_client)
    with serve(app, tmp_path) as base:
        sam, kim = sign_in_over_http(base, "sam"), sign_in_over_http(base, "kim")
        streams = []
        try:
            for i in range(STREAMS):
                streams.append(EventStream(kim if i % 2 else sam, base))
                assert streams[-1].frame() == ": connected"
            # Three times as many streams as a pool holds connections, where each stream used to hold one of its
            # own: the process has its pool's at most (the subscription one of them), plus its queue's and, under
            # gunicorn, the master's from loading the app.
            assert clients_since(redis_client, newest) <= POOL_SIZE + 2
            assert redis_client.pubsub_numpat() == 1  # one pattern subscription, in the one process
            assert redis_client.pubsub_numsub(keys.screen_pop_channel("sam")) == [
                (keys.screen_pop_channel("sam"), 0)]  # no channel subscription per stream
            publish(redis_client, "kim", "CA-kim", None, None)
            publish(redis_client, "sam", "CA-sam", None, None)
            for i, stream in enumerate(streams):  # each stream gets its own agent's pops, and only those
                assert pop_of(stream.frame()) == ("CA-kim" if i % 2 else "CA-sam")
            DeskSessions(redis_client).end_all("sam")  # sam's streams end; kim's go on
            for i, stream in enumerate(streams):
                if not i % 2:
                    assert stream.frame() is None
            publish(redis_client, "kim", "CA-kim-2", None, None)
            assert all(pop_of(stream.frame()) == "CA-kim-2" for stream in streams[1::2])
            DeskSessions(redis_client).end_all("kim")
            assert all(stream.frame() is None for stream in streams[1::2])
        finally:
            for agent in ("sam", "kim"):  # the streams end, so gunicorn stops without waiting for them
                DeskSessions(redis_client).end_all(agent)
            for stream in streams:
                stream.close()


def test_a_stream_ends_when_its_session_expires(app: Flask, client: Any, redis_client: redis.Redis) -> None:
    sign_in(client)
    with client.session_transaction() as session:
        session_id = session["sid"]
    response = client.get("/desk/events", headers={"Accept": "text/event-stream"}, buffered=False)
    frames = iter(response.response)
    assert b": connected" in next(frames)
    redis_client.pexpire(keys.desk_session(session_id), 1)
    assert not any(b"screen_pop" in frame for frame in frames)  # the stream ended, at the fan-out's next check


def test_streams_that_opened_together_are_checked_a_slice_a_tick_each_once_a_round(redis_client: redis.Redis) -> None:
    sessions, fanout = DeskSessions(redis_client), Fanout.of(redis_client)
    count = 2 * SLICES
    listeners = [fanout.open(f"agent-{i}", sessions.start(f"agent-{i}", 3600)) for i in range(count)]
    try:
        assert all(listener.live.wait(10) for listener in listeners)
        for i in range(count):
            sessions.end_all(f"agent-{i}")
        ended: dict[int, float] = {}  # when each stream was told, seen within 5 ms
        deadline = time.monotonic() + 10
        while len(ended) < count and time.monotonic() < deadline:
            for i, listener in enumerate(listeners):
                if i not in ended and not listener.inbox.empty():
                    assert listener.inbox.get() is Signal.SIGNED_OUT
                    ended[i] = time.monotonic()
            time.sleep(0.005)
        assert len(ended) == count  # every stream ended
        # Ticks are TICK_SECONDS apart and each ends only its own slice's streams: the ends come in bunches of at
        # most two (the slices were filled evenly), one bunch a tick, not all at once.
        bunches = [[t for t in ended.values() if abs(t - first) < TICK_SECONDS / 2] for first in ended.values()]
        assert max(len(bunch) for bunch in bunches) <= count // SLICES
    finally:
        for listener in listeners:
            fanout.close(listener)


def test_started_from_a_shell_limited_to_1024_open_files_the_web_process_can_hold_its_connections(
        app: Flask, tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 1024), hard))  # as a new shell has it, for gunicorn
    try:
        server = gunicorn(app.config["REDIS_URL"], tmp_path / "gunicorn.log", THREADLINE_SECRET_KEY=SECRET,
                          WEB_WORKER_CONNECTIONS="2000")
        port = server.__enter__()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        web = [p for p in psutil.Process().children(recursive=True) if p.environ().get("PORT") == str(port)]
        assert len(web) == 2  # the master and its one worker
        # Each socket is a file: a worker kept to 1,024 refused desks past about a thousand.
        assert all(p.rlimit(psutil.RLIMIT_NOFILE)[0] >= 2000 for p in web)
    finally:
        server.__exit__(None, None, None)


def test_a_hard_open_file_limit_below_the_worker_connections_is_raised_to_and_named() -> None:
    probe = ("import resource, runpy\n"
             "resource.setrlimit(resource.RLIMIT_NOFILE, (512, 1500))\n"
             "print(runpy.run_path('gunicorn.conf.py')['open_files_for'](2000))\n"
             "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n")
    said, soft = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                                check=True, timeout=60).stdout.splitlines()
    assert soft == "1500"  # as far as the hard limit lets it
    assert said.startswith("open files are limited to 1,500 (the hard limit)") and "WEB_WORKER_CONNECTIONS" in said


def test_a_stopping_web_worker_ends_its_desk_streams_instead_of_waiting_its_graceful_timeout_for_them(
        app: Flask, tmp_path: Path) -> None:
    with gunicorn(app.config["REDIS_URL"], tmp_path / "gunicorn.log", THREADLINE_SECRET_KEY=SECRET,
                  GUNICORN_CMD_ARGS="--graceful-timeout 120") as port:
        base = f"http://127.0.0.1:{port}"
        stream = EventStream(sign_in_over_http(base, "sam"), base)
        try:
            assert stream.frame() == ": connected"
            web = [p for p in psutil.Process().children(recursive=True) if p.environ().get("PORT") == str(port)]
            [worker] = [p for p in web if p.parent() in web]
            worker.terminate()  # as its master does on a deploy
            worker.wait(timeout=10)  # not the 120 s it would wait for the stream
            assert stream.frame() is None  # ended, for the page to reconnect to a worker still serving
        finally:
            stream.close()


def test_after_a_redis_restart_the_fanout_subscribes_again_and_new_streams_get_their_pops(
        make_app: Any, server: EmbeddedRedis) -> None:
    app = with_agents(make_app(REDIS_URL=server.url, SECRET_KEY=SECRET, REDIS_TIMEOUT_SECONDS=0.5))
    client = app.test_client()
    assert sign_in(client).status_code == 303
    first = client.get("/desk/events", headers={"Accept": "text/event-stream"}, buffered=False)
    frames = iter(first.response)
    assert b": connected" in next(frames)
    with redis_away(server):
        assert list(frames) == []  # ended: the page reconnects with the last id it saw and catches up
    again = client.get("/desk/events", headers={"Accept": "text/event-stream"}, buffered=False)
    frames = iter(again.response)
    assert next(frames) == b": connected\n\n"
    publisher = connect(server.url)
    pop = publish(publisher, "sam", "CA-after", None, None)
    assert next(frames).startswith(f"id: {pop.id}\n".encode())
    assert publisher.pubsub_numpat() == 1  # one subscription still, in this process
    publisher.close()
    again.close()
