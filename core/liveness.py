"""Who is alive: a lease one process holds at a time, and heartbeats that lapse within seconds of a crash."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading

import redis
from rq import Queue
from rq.job import Job, JobStatus

from core import keys

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 1.0  # s between beats
HEARTBEAT_TTL = 3.0  # s: a process killed without a word is known dead this long after its last beat

# KEYS: the lease. ARGV: holder, ttl ms, a holder known dead ('' for none). 1 when the caller holds it now.
_TAKE = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] or (ARGV[3] ~= '' and current == ARGV[3]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# KEYS: the lease. ARGV: holder. Removes the lease only if the caller holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def process_name() -> str:
    """This process as a lease holder: host, pid and a random part (a pid may be reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _dead_here(holder: str) -> bool:
    """Whether holder is a process on this host that no longer runs (elsewhere, only its lease's TTL tells)."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


class Lease:
    """A lease in Redis held by one process at a time: renewed while it works, taken over when it lapses, at once
    when its holder is known dead (a process of this host that no longer runs)."""

    def __init__(self, client: redis.Redis, key: str, ttl: float, holder: str | None = None) -> None:
        self.client, self.key, self.ttl = client, key, ttl
        self.holder = holder or process_name()
        self._take = client.register_script(_TAKE)
        self._release = client.register_script(_RELEASE)

    def hold(self) -> bool:
        """Take or renew the lease; whether this process holds it now."""
        current = self.client.get(self.key)
        current = current.decode() if isinstance(current, bytes) else current
        dead = current if current and current != self.holder and _dead_here(current) else ""
        if dead:
            log.info("the lease %s of %s, a process that no longer runs, is taken over", self.key, dead)
        return bool(self._take(keys=[self.key], args=[self.holder, int(self.ttl * 1000), dead]))

    def release(self) -> None:
        """Give the lease up (on a clean stop), so another process takes it without waiting for the TTL."""
        self._release(keys=[self.key], args=[self.holder])


class Heartbeat:
    """A thread that keeps a key alive while this process runs: the key lapses HEARTBEAT_TTL after a crash."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client, self.key = client, key
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat {key}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _beat(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                self.client.set(self.key, "1", px=int(HEARTBEAT_TTL * 1000))
                failing = False
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if not failing:  # one line per outage, not one per beat
                    log.warning("heartbeat %s cannot reach Redis (%s); retrying", self.key, exc)
                failing = True
            self._stop.wait(HEARTBEAT_EVERY)

    def stop(self) -> None:
        """Stop beating and remove the key: a clean stop is known at once."""
        self._stop.set()
        self._thread.join(timeout=HEARTBEAT_EVERY * 2)
        try:
            self.client.delete(self.key)
        except (redis.ConnectionError, redis.TimeoutError):
            pass  # the key lapses by itself


def alive(client: redis.Redis, key: str) -> bool:
    """Whether the heartbeat or lease at key is current."""
    return bool(client.exists(key))


def job_in_hand(queue: Queue, job: Job) -> bool:
    """Whether someone will still run the job: waiting in its queue, scheduled or deferred, or started by a worker
    whose heartbeat is current. A job a dead worker held is lost: rq would find it only at its next maintenance."""
    status = job.get_status(refresh=False)
    if status == JobStatus.QUEUED:
        # Still queued, unless a worker took it off the queue and died before marking it started.
        return queue.get_job_position(job.id) is not None
    if status in (JobStatus.SCHEDULED, JobStatus.DEFERRED):
        return True
    return (status == JobStatus.STARTED and bool(job.worker_name)
            and alive(queue.connection, keys.worker_alive(job.worker_name)))
