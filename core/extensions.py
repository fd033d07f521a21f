"""The objects the app factory builds once and requests, jobs and commands share, each reached by its type."""

from __future__ import annotations

from typing import Generic, TypeVar

import redis
from flask import Flask, current_app
from rq import Queue
from twilio.rest import Client

T = TypeVar("T")


class Shared(Generic[T]):
    """One shared object of the current app: installed by the factory, read where it is needed, typed."""

    def __init__(self, name: str) -> None:
        self.name = f"threadline.{name}"

    def install(self, app: Flask, value: T) -> T:
        app.extensions[self.name] = value
        return value

    def get(self) -> T:
        """The current app's object (inside an app or request context)."""
        return current_app.extensions[self.name]


REDIS: Shared[redis.Redis] = Shared("redis")  # text replies
QUEUE: Shared[Queue] = Shared("queue")  # RQ's own connection (bytes)
TWILIO: Shared[Client | None] = Shared("twilio")  # Twilio's REST API (or the carrier); None: no credentials
