"""The RQ worker class the Procfile runs: builds the app once, runs every job in its own process, and beats."""

from __future__ import annotations

from typing import Any

from callbacks.jobs import job_app
from core import keys, logs
from core.liveness import Heartbeat
from core.redis_server import open_client
from core.steady_worker import SteadyWorker


class Worker(SteadyWorker):
    """An rq worker that rides out Redis going away, runs its jobs without forking (every job uses the one app, its
    Redis pools and its Twilio connection), and whose heartbeat lapses within seconds of a crash (rq's own worker key
    outlives a SIGKILL by its whole TTL), so the sweep requeues its unfinished dial jobs at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        logs.configure("worker")  # rq's lines and the jobs' in one format (rq's CLI gave its loggers their own)
        self.app = job_app()  # first: a configuration it refuses stops the worker with one line, before it registers
        super().__init__(*args, **kwargs)

    def work(self, *args: Any, **kwargs: Any) -> bool:
        # Its own client: a thread sharing rq's connections could hand rq's blocking dequeue one that times out.
        heartbeat = Heartbeat(open_client(self.app.config, check=False), keys.worker_alive(self.name))
        heartbeat.start()
        try:
            return super().work(*args, **kwargs)
        finally:
            heartbeat.stop()
