"""The threads API: the messaging platform pushes thread context in and reads it back."""

from __future__ import annotations

from blinker import Namespace
from flask import Blueprint, current_app

from context.callcodes import CALL_CODES
from context.lookup import NO_SUCH_THREAD, checked_thread_id, existing_thread, no_such_thread
from context.schemas import (
    CallCode,
    LogsAccepted,
    LogsIn,
    Message,
    PhoneQuery,
    Thread,
    ThreadIn,
    ThreadList,
    ThreadStatus,
)
from context.store import THREADS, MessageConflict, ThreadNotFound
from core.api import API_PREFIX, ApiError, require_api_key
from core.openapi import API

bp = Blueprint("threads", __name__, url_prefix=API_PREFIX)
require_api_key(bp)

# Sent with thread_id= when a PUT resolves a thread: what waited on it (a callback) can stop.
thread_resolved = Namespace().signal("thread-resolved")


@API.route(bp, "/threads/<thread_id>", "PUT", body=ThreadIn, summary="Create or replace a thread",
           description="Attributes are replaced; messages are upserted by id; logs are added. Messages and logs "
                       "already stored are never removed by a PUT.",
           responses={200: ("replaced", Thread), 201: ("created", Thread)})
def put_thread(thread_id: str, body: ThreadIn) -> tuple[Thread, int]:
    store = THREADS.get()
    created = store.put(checked_thread_id(thread_id), body)
    if body.status == ThreadStatus.resolved:
        thread_resolved.send(current_app._get_current_object(), thread_id=thread_id)
    return store.get(thread_id), 201 if created else 200


@API.route(bp, "/threads/<thread_id>", "GET", summary="Read a whole thread",
           responses={200: ("the thread, phone in E.164", Thread), 404: NO_SUCH_THREAD})
def get_thread(thread_id: str) -> tuple[Thread, int]:
    return existing_thread(thread_id), 200


@API.route(bp, "/threads/<thread_id>/messages", "POST", body=Message, summary="Append one message",
           description="Idempotent on the message id: the same message again answers 200; "
                       "other content under an id already used answers 409.",
           responses={201: ("appended", Message), 200: ("already there", Message), 404: NO_SUCH_THREAD,
                      409: ("the id holds another message", None)})
def post_message(thread_id: str, body: Message) -> tuple[Message, int]:
    try:
        appended = THREADS.get().append_message(checked_thread_id(thread_id), body)
    except ThreadNotFound:
        raise no_such_thread(thread_id) from None
    except MessageConflict:
        raise ApiError(409, "conflict", f"message {body.id!r} already exists with other content", "id") from None
    return appended.message, 201 if appended.created else 200


@API.route(bp, "/threads/<thread_id>/logs", "POST", body=LogsIn, summary="Append one log entry or a list",
           responses={201: ("appended", LogsAccepted), 404: NO_SUCH_THREAD})
def post_logs(thread_id: str, body: LogsIn) -> tuple[LogsAccepted, int]:
    entries = body.entries()
    try:
        stored = THREADS.get().append_logs(checked_thread_id(thread_id), entries)
    except ThreadNotFound:
        raise no_such_thread(thread_id) from None
    return LogsAccepted(accepted=len(entries), stored=stored), 201


@API.route(bp, "/threads/<thread_id>/call-code", "POST", summary="A six-digit code the app shows for calling in",
           description="Valid 15 minutes and once: a caller who enters it in the IVR is connected on this thread.",
           responses={201: ("the code", CallCode), 404: NO_SUCH_THREAD})
def post_call_code(thread_id: str) -> tuple[CallCode, int]:
    existing_thread(thread_id)
    code, expires_at = CALL_CODES.get().issue(thread_id)
    return CallCode(code=code, expires_at=expires_at), 201


@API.route(bp, "/threads", "GET", query=PhoneQuery, summary="A customer's threads by phone",
           description="Open and pending threads first, then resolved ones; each group newest activity first.",
           responses={200: ("the threads, without transcripts", ThreadList)})
def list_threads(query: PhoneQuery) -> tuple[ThreadList, int]:
    return ThreadList(threads=THREADS.get().find_by_phone(query.phone, query.limit)), 200
