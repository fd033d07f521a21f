"""The chaos suite's CI scenario: callbacks of every outcome while workers, the clock and the web are SIGKILLed
and Redis restarts from its AOF; nothing may be lost, doubled, early or outside the window (bench/chaos.py)."""

from __future__ import annotations

from pathlib import Path

from bench.chaos import Options, run_scenario
from bench.chaos_measure import table

# About four minutes on two CPUs: 48 callbacks due over a minute, their retries a minute later, then settling.
CI = Options(callbacks=48, minutes=1, rate=5, seed=13, settle=60)


def test_callbacks_survive_killed_processes_and_a_redis_restart(tmp_path: Path) -> None:
    figures = run_scenario("ci", CI, tmp_path)
    print(table([figures]))  # lateness is shown, not judged: timing belongs to the benchmark
    assert figures.states and figures.kills and figures.outages
    assert figures.lost == []
    assert figures.duplicate == []
    assert figures.early == []
    assert figures.outside == []
    assert figures.events_lost == []
    assert figures.events_doubled == []
    assert figures.webhook_5xx == 0
    assert figures.webhook_bad_twiml == 0
