"""Redis behind Sentinel, failed over under load: callbacks neither lost nor dialled twice, webhooks answered.

Two web processes behind a balancer, two workers and two clocks find a master through three Sentinels; the master
is SIGKILLed while callbacks fall due and signed webhooks come in; a Sentinel promotes the replica (about two
seconds: one of silence, then the vote) and everything carries on against it."""

from __future__ import annotations

from pathlib import Path

from bench.chaos_measure import table
from tests.support.failover import CALLBACKS, run_failover


def test_a_failover_loses_no_callback_dials_none_twice_and_webhooks_are_answered(tmp_path: Path) -> None:
    run = run_failover(tmp_path)
    figures = run.figures
    print(table([figures]))
    print(f"failover: master killed {run.killed - run.began:.1f} s in, replica promoted "
          f"{run.promoted - run.killed:.1f} s later, old master back as a replica {run.rejoined - run.promoted:.1f} s "
          f"after that; {figures.webhooks} webhooks, {run.webhook_errors} errors at the switch "
          f"({figures.webhook_503_outage} answered 503 with TwiML, {figures.webhook_unanswered} unanswered); "
          f"{figures.calls} calls for {figures.scheduled} callbacks; {run.ended - run.began:.0f} s; "
          f"tracebacks in logs: {run.log_errors or 'none'}")
    assert figures.scheduled == CALLBACKS
    assert figures.lost == [] and figures.pending == 0  # every callback final: completed, canceled or exhausted
    assert sum(figures.states.values()) == CALLBACKS and not {"scheduled", "dialing", "in_call"} & set(
        s for s, n in figures.states.items() if n)
    assert figures.duplicate == []
    assert figures.calls == CALLBACKS  # each dialled exactly once (one attempt each)
    assert figures.early == []
    # Outside the switch (from the kill to two seconds after the promotion) every webhook was answered with TwiML;
    # within it, a 503 with TwiML that Twilio retries.
    assert figures.webhook_5xx == 0 and figures.webhook_bad_twiml == 0 and figures.webhook_unanswered == 0
    assert figures.events_lost == [] and figures.events_doubled == []
    assert run.clock_holders >= 1
