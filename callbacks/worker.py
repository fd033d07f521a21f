"""The RQ worker class the Procfile runs: builds the app once, before forking a work horse per job, and beats."""

from __future__ import annotations

from typing import Any

from rq import Worker as RQWorker

from callbacks.jobs import job_app
from core import keys
from core.liveness import Heartbeat
from core.redis_server import connect


class Worker(RQWorker):
    """An rq Worker whose forked jobs inherit a ready app, and whose heartbeat lapses within seconds of a crash
    (rq's own worker key outlives a SIGKILL by its whole TTL), so its unfinished dial jobs are requeued at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.app = job_app()  # first: a configuration it refuses stops the worker with one line, before it registers
        super().__init__(*args, **kwargs)

    def work(self, *args: Any, **kwargs: Any) -> bool:
        # Its own client: a thread sharing rq's connections could hand rq's blocking dequeue one that times out.
        heartbeat = Heartbeat(connect(self.app.config["REDIS_URL"], check=False), keys.worker_alive(self.name))
        heartbeat.start()
        try:
            return super().work(*args, **kwargs)
        finally:
            heartbeat.stop()
