"""The call history of a thread, for the messaging platform and the desk."""

from __future__ import annotations

from flask import Blueprint

from context.lookup import NO_SUCH_THREAD, existing_thread
from core.api import API_PREFIX, require_api_key
from core.openapi import API
from voice.calls import CALLS, CallList, CallStore

bp = Blueprint("calls", __name__, url_prefix=API_PREFIX)
require_api_key(bp)


@API.route(bp, "/threads/<thread_id>/calls", "GET", summary="A thread's calls, newest first",
           description="Each call with its times, status, duration, the agent who took it, its recording and "
                       "every step: keys pressed, speech heard, agents rung.",
           responses={200: ("the calls", CallList), 404: NO_SUCH_THREAD})
def thread_calls(thread_id: str) -> tuple[CallList, int]:
    existing_thread(thread_id)
    calls: CallStore = CALLS.get()
    return CallList(calls=calls.for_thread(thread_id)), 200
