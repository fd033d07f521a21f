"""Asking for a callback through the API on a Line, running its jobs, and reading it back."""

from __future__ import annotations

from typing import Any

from rq import SimpleWorker

from tests.support.api import AUTH
from tests.support.carrier import SUPPORT
from tests.support.voice import Line


def ask(line: Line, **body: Any) -> Any:
    """POST a callback request for thread t-1 (as soon as possible, on the support number unless body says)."""
    response = line.app.test_client().post("/api/v1/threads/t-1/callbacks",
                                           json={"when": "asap", "number": SUPPORT, **body}, headers=AUTH)
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    return response


def work(line: Line) -> None:
    """Run every queued job with a real RQ worker (in this process, so the test sees its effects)."""
    queue = line.app.extensions["threadline.queue"]
    SimpleWorker([queue], connection=queue.connection).work(burst=True, with_scheduler=True)


def callback(line: Line, callback_id: str) -> Any:
    """The callback as its store has it now."""
    return line.app.extensions["threadline.callbacks"].get(callback_id)
