"""The RQ worker class the Procfile runs: builds the app once, before forking a work horse per job."""

from __future__ import annotations

from typing import Any

from rq import Worker as RQWorker

from callbacks.jobs import job_app


class Worker(RQWorker):
    """An rq Worker whose forked jobs inherit a ready app instead of importing and building it each time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        job_app()  # first: a configuration it refuses stops the worker with one line, before it registers
        super().__init__(*args, **kwargs)
