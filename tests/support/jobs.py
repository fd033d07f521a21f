"""RQ jobs for tests of the worker: each reports, from inside the worker, what the worker's process holds."""

from __future__ import annotations

import os
from typing import Any

from callbacks.jobs import job_app
from core.extensions import TWILIO


def _pools() -> list[Any]:
    """The connection pools the worker's Twilio client keeps (one per host it has asked)."""
    session = TWILIO.get().http_client.session
    return [pool for adapter in session.adapters.values() for pool in
            (adapter.poolmanager.pools[key] for key in adapter.poolmanager.pools.keys())]


def twilio_pool() -> dict[str, int]:
    """Ask Twilio for one call, as the worker's jobs do: this process, its one pool, and what that pool has done."""
    with job_app().app_context():
        TWILIO.get().calls.list(limit=1)
        (pool,) = _pools()
        return {"pid": os.getpid(), "pool": id(pool), "connections": pool.num_connections,
                "requests": pool.num_requests}


def twilio_pools() -> dict[str, int]:
    """This process and how many connection pools its Twilio client keeps, without asking Twilio anything."""
    with job_app().app_context():
        return {"pid": os.getpid(), "pools": len(_pools())}
