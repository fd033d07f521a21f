"""The whole suite's log: every line the tests' apps log in this process, as LOG_FORMAT=json writes it, kept in
test-artifacts/suite-log.jsonl for the privacy scan that runs after every other test."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import logs

SUITE_LOG = Path(__file__).resolve().parents[2] / "test-artifacts" / "suite-log.jsonl"
LAST = "after_the_suite"  # the marker of tests that read what the whole suite did


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{LAST}: runs after every other test of the session")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker(LAST) is not None)  # stable: the rest keep their order


@pytest.fixture(scope="session", autouse=True)
def suite_log() -> Iterator[logging.Handler]:
    """Write every record of info and above to SUITE_LOG for the session."""
    SUITE_LOG.parent.mkdir(exist_ok=True)
    SUITE_LOG.write_text("")
    # Appended to: a process a test forks writes its lines after ours, never over them.
    handler = logging.FileHandler(SUITE_LOG, mode="a", encoding="utf-8")
    handler.setFormatter(logs.JsonFormatter("tests"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO) if level else logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)
    handler.close()


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Every line the root logger writes while the test runs, formatted as LOG_FORMAT=json formats it."""
    monkeypatch.setenv("LOG_FORMAT", "json")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter("test"))
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def lines_of(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]
