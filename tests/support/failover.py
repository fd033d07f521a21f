"""A Redis failover under load: two web processes behind a balancer, two workers and two clocks, all finding Redis
through three Sentinels; callbacks fall due before and after the master is SIGKILLed while signed webhooks keep
coming. Measured from outside with the chaos bench's own yardsticks (bench/chaos_measure.py)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.callbacks import SUPPORT_NUMBER, ZONE
from bench.chaos import (
    Options,
    carrier_calls,
    plan_callbacks,
    records_of,
    seed_line,
    start_load,
    tear_down,
    wait_events,
    wait_settled,
)
from bench.chaos_load import Load
from bench.chaos_measure import Figures, Window, measure
from bench.chaos_rig import Rig
from directory.models import NumberConfig
from tests.support.sentinel import SentinelGroup

CALLBACKS = 30
SPREAD_MINUTES = 0.4  # due over 24 s; the master is killed about a third of the way in
WEBHOOKS_PER_SECOND = 40
RATE = 5  # THREADLINE_DIAL_RATE
# Short recovery delays, so what the failover cut short (a status callback lost, a claim with its call unrecorded)
# is closed within the test's few seconds rather than production's minute.
SETTINGS = {"THREADLINE_RECONCILE_AFTER": "10", "THREADLINE_CALL_CHECK": "8", "WEB_CONCURRENCY": "1"}


@dataclass
class Failover:
    """What a failover run saw: the chaos figures, when the master died, was replaced and had a replica again."""

    figures: Figures
    killed: float
    promoted: float
    rejoined: float
    began: float
    ended: float
    clock_holders: int  # clocks that ever held the lease
    log_errors: dict[str, int]

    @property
    def webhook_errors(self) -> int:
        """Webhooks not answered 2xx with TwiML: the retried errors of the switch."""
        f = self.figures
        return f.webhook_503_outage + f.webhook_5xx + f.webhook_unanswered + f.webhook_bad_twiml


def _one_attempt_each(app) -> None:
    """The support number gives up after one attempt: every callback ends final (completed, canceled, exhausted)
    within the run, rather than waiting a minute for its retry."""
    numbers = app.extensions["threadline.numbers"]
    stored = numbers.get(SUPPORT_NUMBER).model_dump(exclude={"number", "updated_at"})
    numbers.put(SUPPORT_NUMBER, NumberConfig.model_validate({**stored, "max_attempts": 1}), datetime.now(UTC))


def run_failover(tmp: Path) -> Failover:
    """Everything up behind Sentinel, callbacks planned, webhooks flowing, the master killed mid-run, then settled
    and measured; the caller's environment is left as it was."""
    saved = dict(os.environ)
    group = SentinelGroup(tmp / "redis-group")
    rig = Rig(tmp, RATE, workers=2, webs=2, clocks=2, redis_group=group, settings=SETTINGS)
    load_proc = None
    try:
        rig.start((SUPPORT_NUMBER,))
        os.environ.clear()
        os.environ.update(rig.env)  # this process's app finds Redis through the Sentinels as the others do
        from app import create_app

        app = create_app()
        seed_line(app, rig, 1440)
        _one_attempt_each(app)
        options = Options(callbacks=CALLBACKS, minutes=SPREAD_MINUTES, rate=RATE)
        first_due = time.time() + 3
        plans = plan_callbacks(app, rig, options, first_due, 0)
        out = tmp / "load.json"
        load_proc = start_load(rig, WEBHOOKS_PER_SECOND, out, saved)
        began = time.time()
        rig.stopping.wait(max(0.0, first_due + SPREAD_MINUTES * 60 / 3 - time.time()))
        killed, promoted = group.fail_over()
        rig.outages.append(("redis", killed, promoted))
        rig.stopping.wait(max(0.0, max(p.due for p in plans) + 3 - time.time()))
        rejoined = group.wait_rejoined()
        load_proc.terminate()
        load_proc.wait(30)
        settled = wait_settled(app, plans, time.time() + 40)
        calls = carrier_calls(rig)  # first: a call placed after it has its attempt in the records
        records = records_of(app, plans)
        wait_events(rig, records, 20)
        figures = measure("failover", plans, records, calls, rig.platform.events(), Load.read(out),
                          {SUPPORT_NUMBER: Window(ZONE, 0, 1440)}, 60, settled, rig.outages, RATE)
        holders = sum(any("holding the lease" in line for line in rig.processes.lines(name))
                      for name in rig.names() if name.startswith("clock"))
        return Failover(figures, killed, promoted, rejoined, began, time.time(), holders,
                        {k: v for k, v in rig.log_errors().items() if v})
    finally:
        tear_down(rig, load_proc, saved)
