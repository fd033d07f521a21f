"""The messaging platform's webhook endpoint, and a real RQ worker run until the events it waits for are sent."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask, Response, request
from rq import Queue, SimpleWorker

from context.events import SIGNATURE_HEADER, verify
from tests.support.carrier import Served

SECRET = "whsec-test-0123456789"


@dataclass
class Receiver:
    """The messaging platform's webhook endpoint: verifies signatures with the recipe; can fail or stall."""

    fail_next: int = 0
    always_fail: bool = False
    stall: float = 0.0
    hits: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def build(self) -> Flask:
        app = Flask("platform")

        @app.post("/hooks/threadline")
        def hook() -> Response:
            raw = request.get_data()
            with self.lock:
                self.hits.append({"valid": verify(SECRET, request.headers.get(SIGNATURE_HEADER, ""), raw),
                                  "event_id": request.headers.get("Threadline-Event-Id"),
                                  "content_type": request.headers.get("Content-Type"), "body": json.loads(raw)})
                failing = self.always_fail or self.fail_next > 0
                self.fail_next = max(self.fail_next - 1, 0)
            if self.stall:
                time.sleep(self.stall)
            return Response("try later", status=503) if failing else Response(status=204)

        return app


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    """The platform's endpoint served over real HTTP, and its URL."""
    state = Receiver()
    served = Served(state.build())
    yield state, f"{served.url}/hooks/threadline"
    served.stop()


def work_until(queue: Queue, done: Callable[[], bool], timeout: float = 10) -> None:
    """Run a real RQ worker (with its scheduler, for retry intervals) in bursts until done."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the worker did not finish in time"
        SimpleWorker([queue], connection=queue.connection).work(burst=True, with_scheduler=True,
                                                                logging_level="WARNING")
        time.sleep(0.05)

