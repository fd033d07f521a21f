"""Configuration layering, and the code base staying lint-clean."""

from __future__ import annotations

import subprocess
import sys

from core import config
from tests.support.processes import ROOT


def test_defaults_then_environment_then_overrides():
    defaults = config.load(environ={})
    assert defaults["QUEUE_NAME"] == "threadline"
    assert defaults["THREADLINE_API_KEYS"] == []
    assert defaults["REDIS_URL"] == config.embedded_redis_url(defaults["VAR_DIR"])
    assert defaults["REDIS_URL"].startswith("unix://") and defaults["REDIS_URL"].endswith("/var/redis.sock")

    env = {"THREADLINE_API_KEYS": " a , b,,", "REDIS_URL": "redis://db:6379/2", "THREADLINE_QUEUE": "q",
           "PUBLIC_BASE_URL": "https://support.example.com/"}
    loaded = config.load(environ=env)
    assert loaded["THREADLINE_API_KEYS"] == ["a", "b"]
    assert loaded["REDIS_URL"] == "redis://db:6379/2"
    assert loaded["QUEUE_NAME"] == "q"
    assert loaded["PUBLIC_BASE_URL"] == "https://support.example.com"

    assert config.load(environ=env, overrides={"QUEUE_NAME": "test"})["QUEUE_NAME"] == "test"


def test_embedded_url_follows_the_var_dir(tmp_path):
    assert config.load(environ={"THREADLINE_VAR_DIR": str(tmp_path)})["REDIS_URL"] == f"unix://{tmp_path}/redis.sock"


def test_ruff_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
