"""An RQ worker that runs each job in its own process (no fork per job) and rides out Redis going away: it waits,
with backoff, and carries on; it never quits over it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from rq import Queue, SimpleWorker, worker_registration
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from core.outage import OUTAGE_ERRORS, reason

T = TypeVar("T")

# Short waits: a callback due while Redis is away is late by up to the wait after Redis returns, and a connection
# attempt a second costs Redis nothing.
FIRST_WAIT_SECONDS = 0.5
LONGEST_WAIT_SECONDS = 1.0


class SteadyWorker(SimpleWorker):
    """rq's SimpleWorker: each job runs in the worker's own process, so a job costs no fork and what the process built
    (the app, its Redis and Twilio connections) serves every job; a job's timeout is rq's SIGALRM death penalty, in
    this main thread. rq quits (or hangs) when a Redis error escapes its loop outside the dequeue: this one waits for
    Redis instead, then goes on; a job it already started is never started again."""

    # rq's own retry of a failed blocking pop doubles its wait up to a minute: a 3-s outage would cost 4 s more.
    max_connection_wait_time = LONGEST_WAIT_SECONDS

    def _wait_for_redis(self, exc: BaseException, doing: str) -> None:
        """One log line, then wait (doubling, up to LONGEST_WAIT_SECONDS) until Redis answers again."""
        self.log.warning("Worker %s: Redis unavailable while %s (%s); waiting for it", self.name, doing, reason(exc))
        wait = FIRST_WAIT_SECONDS
        while True:
            time.sleep(wait)  # a SIGTERM meanwhile raises StopRequested: the worker stops as it would when idle
            try:
                self.connection.ping()
                # A Redis that came back without its data forgot this worker: list it again for /readyz.
                worker_registration.register(self)
                break
            except OUTAGE_ERRORS:
                wait = min(wait * 2, LONGEST_WAIT_SECONDS)
        self.log.info("Worker %s: Redis is back", self.name)

    def _until_done(self, doing: str, action: Callable[[], T]) -> T:
        """action, run again once Redis is back each time Redis's absence fails it (only for repeatable actions)."""
        while True:
            try:
                return action()
            except OUTAGE_ERRORS as exc:
                self._wait_for_redis(exc, doing)

    def _best_effort(self, doing: str, action: Callable[[], Any]) -> None:
        """action, skipped with one log line when Redis is away (what it writes is written again soon)."""
        try:
            action()
        except OUTAGE_ERRORS as exc:
            self.log.warning("Worker %s: Redis unavailable while %s (%s); skipped", self.name, doing, reason(exc))

    def check_for_suspension(self, burst: bool) -> None:
        self._until_done("checking for suspension", lambda: super(SteadyWorker, self).check_for_suspension(burst))

    def run_maintenance_tasks(self) -> None:
        self._best_effort("cleaning registries", super().run_maintenance_tasks)

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        # rq retries a ConnectionError of the blocking pop itself; not one before it, nor a TimeoutError.
        parent = super()
        return self._until_done("waiting for a job", lambda: parent.dequeue_job_and_maintain_ttl(timeout,
                                                                                               max_idle_time))

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        self._best_effort("sending a heartbeat", lambda: super(SteadyWorker, self).heartbeat(timeout, pipeline))

    def prepare_execution(self, job: Job) -> Any:
        # Before the job runs: it has left the queue, so it must still run once Redis is back.
        parent = super()
        return self._until_done("starting a job", lambda: parent.prepare_execution(job))

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            super().execute_job(job, queue)
        except OUTAGE_ERRORS as exc:
            # The job has run (rq catches whatever the job raises): only its bookkeeping failed. The job is not run
            # again, but it must not read as running either: whoever waits for it (the callbacks' sweep) would wait
            # until rq's registry cleaning, minutes on.
            self._wait_for_redis(exc, f"ending job {job.id}")
            self._until_done(f"closing job {job.id}", lambda: self._close_unended(job, queue))

    def _close_unended(self, job: Job, queue: Queue) -> None:
        """A job whose end Redis missed, and that still reads as started by this worker, is marked failed."""
        try:
            job.refresh()
        except NoSuchJobError:
            return  # Redis came back without it: nothing reads it as running
        if job.get_status(refresh=False) == JobStatus.STARTED and job.worker_name == self.name:
            self.log.warning("Worker %s: job %s ended while Redis was away; its result is unknown, marked failed",
                             self.name, job.id)
            self.handle_job_failure(job, queue, exc_string="Redis went away before the job's end was recorded")

    def teardown(self) -> None:
        self._best_effort("registering its end", super().teardown)
