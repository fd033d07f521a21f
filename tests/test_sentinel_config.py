"""Redis behind Sentinel in the configuration: REDIS_SENTINELS read and refused in words, where Redis is said to be
(never with its password), no embedded Redis started, and a claim that waits for a replica."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from core import config
from core.redis_server import RedisUnavailable, describe_config, open_client
from tests.support.processes import ROOT, free_port

SENTINELS = {"REDIS_SENTINELS": "10.0.0.5:26379, sentinel-b.internal:26380,[::1]:26381",
             "REDIS_SENTINEL_MASTER": "threadline"}


def test_sentinels_are_read_as_host_and_port_and_no_embedded_redis_is_assumed():
    settings = config.load(SENTINELS)
    assert config.uses_sentinel(settings) and settings["REDIS_URL"] is None
    assert config.sentinel_addresses(settings) == [("10.0.0.5", 26379), ("sentinel-b.internal", 26380),
                                                   ("::1", 26381)]
    config.check(settings)
    assert describe_config(settings) == ("master 'threadline' through the Sentinels 10.0.0.5:26379, "
                                         "sentinel-b.internal:26380, ::1:26381")


@pytest.mark.parametrize("bad", ["sentinel-a", "sentinel-a:", ":26379", "sentinel-a:port", "sentinel-a:0",
                                 "sentinel-a:70000", "sentinel a:26379"])
def test_a_sentinel_without_a_usable_host_and_port_is_refused_naming_the_setting(bad):
    settings = config.load({**SENTINELS, "REDIS_SENTINELS": f"10.0.0.5:26379,{bad}"})
    with pytest.raises(config.ConfigError) as refused:
        config.check(settings)
    assert str(refused.value).startswith("REDIS_SENTINELS must list Sentinels as host:port")
    assert repr(bad.strip()) in str(refused.value)


@pytest.mark.parametrize(("env", "says"), [
    ({"REDIS_SENTINELS": "10.0.0.5:26379"}, "REDIS_SENTINEL_MASTER is not set"),
    ({"REDIS_SENTINEL_MASTER": "threadline"}, "REDIS_SENTINEL_MASTER is set but REDIS_SENTINELS is not"),
    ({**SENTINELS, "REDIS_URL": "redis://10.0.0.9:6379/0"}, "REDIS_URL and REDIS_SENTINELS are both set"),
    ({"REDIS_URL": "redis://10.0.0.9:6379/0", "REDIS_PASSWORD": "s3cret"},
     r"REDIS_PASSWORD is set but is used only with REDIS_SENTINELS: for one Redis, put its password in REDIS_URL"),
    ({"REDIS_SENTINEL_PASSWORD": "s3cret"}, "REDIS_SENTINEL_PASSWORD is set but is used only with REDIS_SENTINELS"),
])
def test_half_a_sentinel_setting_or_two_ways_to_redis_are_refused(env, says):
    with pytest.raises(config.ConfigError, match=says):
        config.check(config.load(env))


def test_sentinels_given_to_the_app_as_one_string_are_read_as_from_the_environment():
    settings = config.load({}, {"REDIS_SENTINELS": "10.0.0.5:26379, [::1]:26381", "REDIS_SENTINEL_MASTER": "tl"})
    config.check(settings)
    assert config.sentinel_addresses(settings) == [("10.0.0.5", 26379), ("::1", 26381)]


def test_unreachable_sentinels_are_named_with_the_master_never_the_password():
    port = free_port()
    settings = config.load({"REDIS_SENTINELS": f"127.0.0.1:{port}", "REDIS_SENTINEL_MASTER": "threadline",
                            "REDIS_PASSWORD": "hunter2-very-secret", "REDIS_SENTINEL_PASSWORD": "other-secret-22"})
    with pytest.raises(RedisUnavailable) as unreachable:
        open_client(settings)
    message = str(unreachable.value)
    assert message.startswith(f"cannot reach the Redis master 'threadline' through the Sentinels 127.0.0.1:{port}: ")
    assert "secret" not in message and "\n" not in message


def _environment(**env: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "TWILIO_", "PUBLIC_BASE_URL"))}
    return {**environ, **env}


def test_the_run_command_starts_no_redis_behind_sentinel_and_says_in_one_line_where_it_looked(tmp_path):
    port = free_port()
    environ = _environment(REDIS_SENTINELS=f"127.0.0.1:{port}", REDIS_SENTINEL_MASTER="threadline",
                           THREADLINE_VAR_DIR=str(tmp_path), PORT=str(free_port()), CARRIER_PORT=str(free_port()))
    result = subprocess.run([sys.executable, "-m", "core.runner"], cwd=ROOT, env=environ, capture_output=True,
                            text=True, timeout=60)
    lines = (result.stdout + result.stderr).splitlines()
    assert result.returncode == 1
    assert len(lines) == 1 and lines[0].startswith(
        f"threadline: cannot reach the Redis master 'threadline' through the Sentinels 127.0.0.1:{port}: "), lines
    assert not (tmp_path / "redis.sock").exists() and not (tmp_path / "redis.pid").exists()


def test_the_workers_rq_settings_follow_the_sentinels_and_else_the_apps_own_redis(tmp_path):
    show = "import callbacks.rq_settings as s; print(getattr(s, 'SENTINEL', None) or s.REDIS_URL)"
    behind = subprocess.run([sys.executable, "-c", show], cwd=ROOT, capture_output=True, text=True, check=True,
                            env=_environment(**SENTINELS, REDIS_PASSWORD="pw-0123456789")).stdout
    assert "'INSTANCES': [('10.0.0.5', 26379)" in behind and "'MASTER_NAME': 'threadline'" in behind
    plain = subprocess.run([sys.executable, "-c", show], cwd=ROOT, capture_output=True, text=True, check=True,
                           env=_environment(THREADLINE_VAR_DIR=str(tmp_path))).stdout.strip()
    assert plain == config.embedded_redis_url(str(tmp_path))  # never rq's own default, localhost:6379
    refused = subprocess.run([sys.executable, "-c", show], cwd=ROOT, capture_output=True, text=True,
                             env=_environment(**{**SENTINELS, "REDIS_SENTINELS": "sentinel-a"}))
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().startswith("threadline: REDIS_SENTINELS must list Sentinels as host:port")
