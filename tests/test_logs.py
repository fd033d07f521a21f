"""Logs: one JSON object a line with LOG_FORMAT=json from every process, ids of the work on each line, and no phone
number, message text or secret in any of them."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest
from flask import Flask

from bench.callbacks import SUPPORT_NUMBER, phone_of, thread_body
from bench.chaos import AGENT_PHONE, Options, run_scenario
from core import logs
from tests.support.api import AUTH
from tests.support.api import thread_body as api_thread_body
from tests.support.suite_log import SUITE_LOG, lines_of

REQUIRED = ("time", "level", "logger", "message", "process")
ANY_PHONE = re.compile(r"(?:\+|%2B)\d{7,}", re.IGNORECASE)
# The tests' people: every 415-555 number, however written.
TEST_PHONE = re.compile(r"(?:\+|%2B)?1?[\s.-]?\(?415\)?[\s.-]?555[\s.-]?\d{4}(?!\d)", re.IGNORECASE)


def test_a_json_line_has_its_fields_the_bound_ids_and_the_error(captured: io.StringIO) -> None:
    with logs.bound(call_sid="CA123", thread_id="t-1", callback_id=None):
        try:
            raise ValueError("broken")
        except ValueError:
            logging.getLogger("threadline.test").exception("could not %s", "go on")
    logging.getLogger("threadline.test").warning("after")
    first, second = lines_of(captured)
    assert {k: first[k] for k in ("level", "logger", "message", "process", "call_sid", "thread_id")} == {
        "level": "error", "logger": "threadline.test", "message": "could not go on", "process": "test",
        "call_sid": "CA123", "thread_id": "t-1"}
    assert "callback_id" not in first and "ValueError: broken" in first["error"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(first["time"]))
    assert "call_sid" not in second  # the block's ids ended with it


# Every secret the configuration reads (README's table), with a value to find in a line.
SECRETS = {"TWILIO_AUTH_TOKEN": "auth-token-0123456789", "THREADLINE_API_KEYS": "first-key-abcdef,second-key-ghijkl",
           "THREADLINE_ADMIN_KEYS": "admin-key-mnopqr", "THREADLINE_WEBHOOK_SECRET": "webhook-secret-stuvwx",
           "THREADLINE_SECRET_KEY": "cookie-secret-yzabcd", "TWILIO_API_KEY_SECRET": "api-key-secret-efghij",
           "REDIS_URL": "redis://:redis-password-klmnop@redis.internal:6379/0"}


def test_every_configured_secret_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    said = " ".join(SECRETS.values())
    record = logging.LogRecord("threadline", logging.ERROR, __file__, 1, "settings: %s", (said,), None)
    with logs.bound(thread_id="second-key-ghijkl"):
        for formatter in (logs.JsonFormatter("web"), logs.TextFormatter("web"), logs.Masked(None)):
            text = formatter.format(record)
            for secret in ("0123456789", "abcdef", "ghijkl", "mnopqr", "stuvwx", "yzabcd", "efghij", "klmnop"):
                assert secret not in text, (type(formatter).__name__, text)


def test_ids_that_are_not_ids_name_no_line(app: Flask, captured: io.StringIO) -> None:
    refused = app.test_client().post("/voice/incoming?thread=%2B14155550123%20and%20more", headers={
        "X-Twilio-Signature": "wrong"}, data={"CallSid": "<script>", "From": "+14155550123"})
    assert refused.status_code == 403
    [line] = [line for line in lines_of(captured) if "refused a webhook" in str(line["message"])]
    assert "thread_id" not in line and "call_sid" not in line and "4155550123" not in json.dumps(line)


def test_a_json_line_stays_one_line_whatever_it_holds(captured: io.StringIO) -> None:
    logging.getLogger("threadline.test").warning("odd %s", "a\x85b\u2028c\u2029d\ne")
    [text] = captured.getvalue().splitlines()  # Python's idea of a line break is the widest
    assert json.loads(text)["message"] == "odd a\x85b\u2028c\u2029d\ne"


def test_phone_numbers_and_secrets_are_masked_in_both_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "auth-token-0123456789")
    monkeypatch.setenv("THREADLINE_API_KEYS", "first-key-abcdef,second-key-ghijkl")
    record = logging.LogRecord("threadline", logging.WARNING, __file__, 1,
                               "from %s to %s, body From=%%2B14155550123, key second-key-ghijkl, token %s", (
                                   "+14155550199", "+44 20 7183 8750", "auth-token-0123456789"), None)
    for formatter in (logs.JsonFormatter("web"), logs.TextFormatter("web")):
        text = formatter.format(record)
        assert not ANY_PHONE.search(text) and not TEST_PHONE.search(text) and "7183" not in text, text
        assert "0123456789" not in text and "ghijkl" not in text, text
        assert "…99" in text and "…50" in text and "…23" in text and "[secret]" in text


def test_every_request_has_an_id_on_its_lines_and_in_its_answer(app: Flask, captured: io.StringIO) -> None:
    client = app.test_client()
    given = client.get("/api/v1/threads/missing", headers={**AUTH, "X-Request-Id": "proxy-id-42"})
    forged = client.get("/api/v1/threads/missing", headers={**AUTH, "X-Request-Id": 'x" "level":"error'})
    assert given.headers["X-Request-Id"] == "proxy-id-42"
    assert re.fullmatch(r"[0-9a-f]{16}", forged.headers["X-Request-Id"])  # a proxy's id that could forge a line
    refused = client.post("/voice/incoming?thread=t-9", data={"CallSid": "CA" + "7" * 32, "From": "+14155550123"},
                          headers={"X-Twilio-Signature": "wrong"})
    assert refused.status_code == 403
    [line] = [line for line in lines_of(captured) if "refused a webhook" in str(line["message"])]
    assert line["call_sid"] == "CA" + "7" * 32 and line["thread_id"] == "t-9"
    assert line["request_id"] == refused.headers["X-Request-Id"]


def test_with_json_logs_every_line_of_a_full_run_is_json_and_names_no_customer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """web (gunicorn), a worker and the clock as the Procfile runs them, with callbacks of every outcome, their
    retries, calls in and the platform's events (bench/chaos.py's baseline, short)."""
    monkeypatch.setenv("LOG_FORMAT", "json")
    figures = run_scenario("baseline", Options(callbacks=8, minutes=0.25, rate=5, seed=3, settle=45,
                                               webhooks=4), tmp_path)
    assert figures.states and figures.lost == []  # the run did its work
    logs_written = {path.stem: path.read_text(errors="replace").rstrip("\n").split("\n")
                    for path in tmp_path.glob("*.log") if path.stem.split("-")[0] in ("web", "worker", "clock")}
    assert set(logs_written) >= {"web", "worker-1", "clock"}, sorted(logs_written)
    customers = [phone_of(i) for i in range(8)] + [AGENT_PHONE, SUPPORT_NUMBER]
    texts = {m["text"] for m in thread_body(0)["messages"]}
    for name, lines in logs_written.items():
        assert lines, f"{name} wrote nothing"
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                pytest.fail(f"{name} wrote a line that is not JSON: {line!r}")
            assert isinstance(record, dict) and all(k in record for k in REQUIRED), f"{name}: {line}"
            assert not ANY_PHONE.search(line), f"{name} logged a phone number: {line}"
            assert not any(phone[2:] in line for phone in customers), f"{name} logged a customer's phone: {line}"
            assert not any(text in line for text in texts), f"{name} logged what a customer wrote: {line}"
    access = [json.loads(line) for line in logs_written["web"] if '"gunicorn.access"' in line]
    assert access and all({"method", "path", "status", "duration_ms"} <= set(a) for a in access)
    assert any(a["path"] == "/voice/incoming" and a["status"] == 200 for a in access)


@pytest.mark.after_the_suite
def test_the_whole_suites_log_names_no_test_customer(suite_log: logging.Handler) -> None:
    """After every other test: what the tests' apps logged holds none of their customers' phones, however written,
    nor what they wrote (the messages and logs of the threads the tests send)."""
    suite_log.flush()
    lines = SUITE_LOG.read_text(encoding="utf-8").rstrip("\n").split("\n")  # as a log shipper splits them
    texts = {m["text"] for m in [*api_thread_body()["messages"], *thread_body(0)["messages"]]}
    texts |= {entry["message"] for entry in api_thread_body()["logs"]}
    for line in lines:
        record = json.loads(line)
        assert all(k in record for k in REQUIRED), line
        assert not TEST_PHONE.search(line), f"a customer's phone in the suite's log: {line}"
        assert not any(text in line for text in texts), f"what a customer wrote, in the suite's log: {line}"
