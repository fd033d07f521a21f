"""The Procfile's clock: under a lease, queue due callbacks and RQ's delayed jobs the moment they are due, and sweep
for what dead workers left. Several may run (one per machine): one holds the lease and works, the others stand by."""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import UTC, datetime

import redis
from flask import Flask

from callbacks.dispatch import Dispatcher
from callbacks.jobs import job_app
from callbacks.recovery import sweep
from callbacks.store import CALLBACKS
from core import keys, logs
from core.extensions import QUEUE, REDIS
from core.liveness import Lease
from core.metrics import CLOCK_QUEUED, SWEEP_RECOVERIES

log = logging.getLogger("threadline.clock")

TICK = 0.1  # s between looks at the due index: a due callback waits at most this long to be queued
LEASE_TTL = 3.0  # s: a clock that stops without a word is replaced this long after its last tick
BACKOFF = (0.25, 0.5, 1.0)  # s between tries while Redis cannot be reached: short, a due call waits on it


class Clock:
    """One clock process: its lease, its dispatcher, and when it sweeps next."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        with app.app_context():
            self.lease = Lease(REDIS.get(), keys.CLOCK_LEASE, LEASE_TTL)
            self.dispatcher = Dispatcher(CALLBACKS.get(), QUEUE.get())
        self.every = float(app.config["SWEEP_EVERY_SECONDS"])
        self.holding = False
        self.next_sweep = 0.0
        self.last_failure = ""

    def tick(self, now: float) -> float:
        """Do what is due as of now (epoch s) if this clock holds the lease; the seconds to wait before the next."""
        if not self.lease.hold():
            if self.holding:
                log.warning("another clock holds the lease now; standing by")
            self.holding = False
            return LEASE_TTL / 3
        if not self.holding:
            log.info("holding the lease: queueing due callbacks and sweeping every %s s", self.every)
            self.holding = True
        queued = self.dispatcher.callbacks(now)
        moved = self.dispatcher.delayed_jobs(now)
        if queued or moved:
            CLOCK_QUEUED.labels("callbacks").inc(queued)
            CLOCK_QUEUED.labels("delayed_jobs").inc(moved)
            log.info("queued %d due callback(s) and %d delayed job(s)", queued, moved)
        status = {"holder": self.lease.holder, "ticked_at": now}
        if now >= self.next_sweep:
            found = sweep(datetime.fromtimestamp(now, UTC))
            for kind, count in found.items():
                if count:
                    SWEEP_RECOVERIES.labels(kind).inc(count)
            if any(found.values()):
                log.info("swept: %s", ", ".join(f"{name} {count}" for name, count in found.items()))
            self.next_sweep = now + self.every
            status["swept_at"] = now
        REDIS.get().hset(keys.CLOCK_STATUS, mapping=status)
        return TICK

    def run(self, stop: threading.Event) -> None:
        """Tick until stop is set; Redis going away is waited out with backoff, any other failure is logged."""
        failures = 0
        while not stop.is_set():
            try:
                with self.app.app_context():
                    wait = self.tick(time.time())
                if failures:
                    log.info("Redis is back: queueing and sweeping again")
                failures, self.last_failure = 0, ""
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
                wait = BACKOFF[min(failures, len(BACKOFF) - 1)]
                if failures == 0:
                    log.warning("cannot reach Redis (%s); trying again with backoff", str(exc).splitlines()[0])
                failures += 1
            except Exception as exc:  # a failed tick is tried again; the same failure is told once
                wait = 1.0
                if repr(exc) != self.last_failure:
                    log.exception("tick failed")
                self.last_failure = repr(exc)
            stop.wait(wait)
        if self.holding:
            try:
                self.lease.release()  # a clean stop: another clock takes over at once
            except (redis.ConnectionError, redis.TimeoutError):
                pass


def main() -> None:
    logs.configure("clock")
    app = job_app()  # the same environment as web and worker
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    Clock(app).run(stop)


if __name__ == "__main__":
    main()
