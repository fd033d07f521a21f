"""The embedded server: a current Redis, whose data from the earlier embedded Redis carries over."""

from __future__ import annotations

from pathlib import Path

from core.redis_server import EmbeddedRedis, connect


def resp(*words: str) -> bytes:
    """One command as an append-only file holds it (RESP)."""
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def test_the_embedded_server_answers_as_redis_7_or_newer(tmp_path: Path):
    server = EmbeddedRedis(tmp_path, appendonly=False)
    client = connect(server.start())
    try:
        info = client.info("server")
        major = int(str(info["redis_version"]).split(".")[0])
        assert major >= 7, info["redis_version"]
        assert Path(info["executable"]).resolve() == Path(server.executable()).resolve()
    finally:
        client.close()
        server.stop()


def test_data_the_earlier_embedded_redis_wrote_is_kept_across_the_upgrade(tmp_path: Path):
    """Redis 6.2 kept one appendonly.aof; the server moves it into its AOF directory and loads it."""
    (tmp_path / "appendonly.aof").write_bytes(
        resp("SELECT", "0") + resp("HSET", "thread:T1", "subject", "App crashes at login") + resp("SET", "n", "41")
    )
    for expected in (41, 42):
        server = EmbeddedRedis(tmp_path, appendonly=True)
        client = connect(server.start())
        try:
            assert client.hget("thread:T1", "subject") == "App crashes at login"
            assert int(client.get("n")) == expected
            client.incr("n")  # written after the move: it must survive the next start too
        finally:
            client.close()
            server.stop()
    assert (tmp_path / "appendonlydir").is_dir()
