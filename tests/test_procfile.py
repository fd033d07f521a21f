"""The Procfile's processes: what they name imports and runs."""

from __future__ import annotations

import importlib
import os
import subprocess

import pytest
from flask import Flask
from rq import Queue

from core import config
from core.runner import procfile
from tests.support.processes import BIN, ROOT, argv, free_port

FAKE_TWILIO = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "x"}  # real Twilio: no TWILIO_API_BASE_URL


def test_procfile_has_a_web_and_a_worker_process():
    assert set(procfile()) == {"web", "worker", "clock"}


def test_web_imports_the_factory_it_names_and_builds_an_app(redis_url, monkeypatch):
    args = argv(procfile()["web"], dict(os.environ))
    assert args[0] == "gunicorn" and (BIN / "gunicorn").exists()
    module_name, _, call = args[-1].partition(":")
    assert call.endswith("()")
    monkeypatch.setenv("REDIS_URL", redis_url)
    factory = getattr(importlib.import_module(module_name), call.removesuffix("()"))
    assert isinstance(factory(), Flask)


def test_gunicorn_accepts_its_configuration(redis_url):
    env = {**os.environ, "PORT": "8123", "REDIS_URL": redis_url, "FORWARDED_ALLOW_IPS": "10.0.0.7,10.1.0.0/16"}
    result = subprocess.run([BIN / "gunicorn", "--check-config", "--print-config", "app:create_app()"],
                            cwd=ROOT, capture_output=True, text=True, env=env, check=True)
    settings = dict(line.split(" = ", 1) for line in result.stdout.splitlines() if " = " in line)
    settings = {key.strip(): value.strip() for key, value in settings.items()}
    assert settings["bind"] == "['0.0.0.0:8123']"
    assert settings["worker_class"] == "gevent"
    assert settings["preload_app"] == "True"
    assert "%(U)s" in settings["access_log_format"] and "%(r)s" not in settings["access_log_format"]
    assert "10.0.0.7" in settings["forwarded_allow_ips"] and "10.1.0.0/16" in settings["forwarded_allow_ips"]


def test_worker_serves_the_apps_queue_on_the_apps_redis(app, redis_url):
    queue: Queue = app.extensions["threadline.queue"]
    job = queue.enqueue("os.getcwd")
    env = {**os.environ, "REDIS_URL": redis_url}
    args = argv(procfile()["worker"], env)
    assert args[:2] == ["rq", "worker"] and "--with-scheduler" not in args  # the clock queues what is due
    assert args[-1] == config.DEFAULTS["QUEUE_NAME"] == queue.name
    subprocess.run([BIN / args[0], *args[1:], "--burst"], cwd=ROOT, env=env, check=True, capture_output=True,
                   timeout=60)
    job.refresh()
    assert job.get_status() == "finished"
    assert job.return_value() == str(ROOT)


def test_clock_runs_the_sweeper_module():
    args = argv(procfile()["clock"], dict(os.environ))
    assert args == ["python", "-m", "callbacks.clock"]
    assert callable(importlib.import_module("callbacks.clock").main)


def test_the_web_alone_says_once_what_its_configuration_lacks(redis_url):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THREADLINE_", "TWILIO_"))}
    env.update(REDIS_URL=redis_url, HOST="127.0.0.1", PORT=str(free_port()), WEB_CONCURRENCY="2")
    args = argv(procfile()["web"], env)
    web = subprocess.Popen([BIN / args[0], *args[1:]], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in web.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if sum("Booting worker" in seen for seen in lines) == 2:  # both workers are up: the app is built
                break
    finally:
        web.terminate()
        lines += web.communicate(timeout=60)[0].splitlines(keepends=True)
    output = "".join(lines)
    assert output.count("THREADLINE_SECRET_KEY is not set") == 1, output
    assert output.count("THREADLINE_API_KEYS is not set: the API refuses every request until it is") == 1, output


def refusal(name: str, redis_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Start one Procfile process as a platform would, and wait for it to stop by itself."""
    environ = {k: v for k, v in os.environ.items() if k != "PUBLIC_BASE_URL" and not k.startswith("TWILIO_")}
    environ.update(REDIS_URL=redis_url, HOST="127.0.0.1", PORT="0", **env)
    args = argv(procfile()[name], environ)
    return subprocess.run([BIN / args[0], *args[1:]], cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("name", ["web", "worker", "clock"])
@pytest.mark.parametrize(("base", "says"), [
    (None, "PUBLIC_BASE_URL is not set"),
    ("http://support.example.com", "PUBLIC_BASE_URL must start with https://"),
    ("support.example.com", "PUBLIC_BASE_URL must be an absolute address"),
    ("/threadline", "PUBLIC_BASE_URL must be an absolute address"),
])
def test_with_twilio_each_process_refuses_to_start_without_an_https_public_url(redis_url, name, base, says):
    result = refusal(name, redis_url, **FAKE_TWILIO, **({"PUBLIC_BASE_URL": base} if base else {}))
    lines = (result.stdout + result.stderr).splitlines()
    assert result.returncode != 0
    assert len(lines) == 1 and lines[0].startswith(f"threadline: {says}"), lines


@pytest.mark.parametrize("name", ["web", "worker", "clock"])
def test_with_the_carrier_a_public_url_is_checked_only_when_given(redis_url, name):
    result = refusal(name, redis_url, **FAKE_TWILIO, TWILIO_API_BASE_URL="http://127.0.0.1:9",
                     PUBLIC_BASE_URL="127.0.0.1:8000")
    lines = (result.stdout + result.stderr).splitlines()
    assert result.returncode != 0
    assert len(lines) == 1 and lines[0].startswith("threadline: PUBLIC_BASE_URL must be an absolute address"), lines
