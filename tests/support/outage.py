"""Redis going away under the app: an embedded server with its AOF, killed and started again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from core.redis_server import EmbeddedRedis


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A Redis of the test's own, AOF on, so that it can be killed and brought back with its data."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("lost"), appendonly=True)
    server.start()
    yield server
    server.stop()


@contextmanager
def redis_away(server: EmbeddedRedis) -> Iterator[None]:
    """Redis killed (no goodbye to its clients, its socket left behind), then started again from its AOF."""
    assert server.process is not None
    server.process.kill()
    server.process.wait()
    server.process = None
    try:
        yield
    finally:
        server.start()
