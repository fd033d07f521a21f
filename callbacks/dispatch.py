"""Due work onto the queue, by the clock that holds the lease: callbacks from their own due index the moment they are
due, and RQ's delayed jobs (event retries), so nothing waits on RQ's scheduler or its lock."""

from __future__ import annotations

import logging

from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from callbacks.dialer import AHEAD, enqueue_dial
from callbacks.schemas import State
from callbacks.store import CallbackNotFound, CallbackStore

log = logging.getLogger(__name__)


class Dispatcher:
    """Queues each due callback's dial once: it remembers what it queued while the callback stays in the due index
    at the same time, so a backlog costs one read per callback, not one per tick."""

    def __init__(self, store: CallbackStore, queue: Queue) -> None:
        self.store, self.queue = store, queue
        self.sent: dict[str, float] = {}

    def callbacks(self, now: float) -> int:
        """Queue the dial of every callback due by now (epoch s, plus AHEAD); how many were queued."""
        due = self.store.due_by(now + AHEAD.total_seconds())
        self.sent = {callback_id: at for callback_id, at in due if self.sent.get(callback_id) == at}
        queued = 0
        for callback_id, at in due:
            if callback_id in self.sent:
                continue
            try:
                callback = self.store.get(callback_id)
            except CallbackNotFound:
                continue
            if callback.state == State.scheduled and enqueue_dial(self.queue, callback):
                queued += 1
            self.sent[callback_id] = at
        return queued

    def delayed_jobs(self, now: float) -> int:
        """Move RQ's delayed jobs whose time has come (event delivery retries) onto their queue."""
        registry = ScheduledJobRegistry(queue=self.queue)
        job_ids = registry.get_jobs_to_schedule(int(now))
        if not job_ids:
            return 0
        with self.queue.connection.pipeline() as pipe:
            for job in Job.fetch_many(job_ids, connection=self.queue.connection):
                if job is not None:
                    self.queue.enqueue_job(job, pipeline=pipe)
            for job_id in job_ids:
                registry.remove(job_id, pipeline=pipe)
            pipe.execute()
        return len(job_ids)
