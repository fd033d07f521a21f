"""Each request's ids for the log: its request id (the proxy's X-Request-Id, or a new one) and the call, callback and
thread it is about, bound for every line logged while it is handled and given to gunicorn's access line."""

from __future__ import annotations

import re
import secrets
from typing import Any

from flask import Flask, g, request

from core import logs

REQUEST_ID_HEADER = "X-Request-Id"
ENVIRON_KEY = "threadline.request_id"  # where gunicorn's access line finds it
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # a proxy's id is kept only when it can't forge a log line


def request_id() -> str:
    """This request's id: the proxy's when it looks like one, else a new one."""
    return _id(request.headers.get(REQUEST_ID_HEADER)) or secrets.token_hex(8)


def _id(value: str | None) -> str | None:
    """value when it looks like an id (what anyone sent is checked before it names a log line), else None."""
    return value if value and _SAFE_ID.fullmatch(value) else None


def _bind() -> None:
    view_args = request.view_args or {}
    rid = request.environ[ENVIRON_KEY] = request_id()
    form = request.form if request.mimetype == "application/x-www-form-urlencoded" else {}
    g.log_token = logs.bind(
        request_id=rid, call_sid=_id(view_args.get("call_sid") or form.get("CallSid")),
        callback_id=_id(view_args.get("callback_id") or request.args.get("cb")),
        thread_id=_id(view_args.get("thread_id") or request.args.get("thread")))


def _unbind(exc: BaseException | None) -> None:
    token = g.pop("log_token", None)
    if token is not None:
        logs.unbind(token)


def _echo(response: Any) -> Any:
    rid = request.environ.get(ENVIRON_KEY)
    if rid:
        response.headers[REQUEST_ID_HEADER] = rid
    return response


def install(app: Flask) -> None:
    """Bind the ids before anything else runs for a request, answer with the request id, and unbind at its end."""
    app.before_request_funcs.setdefault(None, []).insert(0, _bind)
    app.after_request(_echo)
    app.teardown_request(_unbind)
