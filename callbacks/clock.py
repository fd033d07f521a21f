"""The Procfile's clock: every few seconds, sweep for callbacks a dead worker left behind."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime

from callbacks.jobs import job_app
from callbacks.recovery import sweep

log = logging.getLogger("threadline.clock")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s clock %(message)s")
    app = job_app()  # the same environment as web and worker
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    every = app.config["SWEEP_EVERY_SECONDS"]
    log.info("sweeping every %s s", every)
    while not stop.is_set():
        with app.app_context():
            try:
                found = sweep(datetime.now(UTC))
                if any(found.values()):
                    log.info("swept: %s", found)
            except Exception:  # a failed sweep is retried at the next tick
                log.exception("sweep failed")
        stop.wait(every)


if __name__ == "__main__":
    main()
