"""Each request's ids for the log: its request id (the proxy's X-Request-Id, or a new one) and the call, callback and
thread it is about, bound for every line logged while it is handled and given to gunicorn's access line."""

from __future__ import annotations

import contextvars
import re
import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask, g, request

from core import logs

REQUEST_ID_HEADER = "X-Request-Id"
ENVIRON_KEY = "threadline.request_id"  # where gunicorn's access line finds it
_HEADER_KEY = "HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # a proxy's id is kept only when it can't forge a log line


def bind(environ: dict[str, Any], call_sid: str | None = None, callback_id: str | None = None,
         thread_id: str | None = None) -> contextvars.Token[Mapping[str, str]]:
    """Give the request in environ its id, once (the proxy's when it looks like one, else a new one), where gunicorn's
    access line and the answer find it; bind it with the ids that look like ids for every line logged until unbind."""
    rid = environ.get(ENVIRON_KEY) or _id(environ.get(_HEADER_KEY)) or secrets.token_hex(8)
    environ[ENVIRON_KEY] = rid
    return logs.bind(request_id=rid, call_sid=_id(call_sid), callback_id=_id(callback_id), thread_id=_id(thread_id))


def _id(value: str | None) -> str | None:
    """value when it looks like an id (what anyone sent is checked before it names a log line), else None."""
    return value if value and _SAFE_ID.fullmatch(value) else None


def _bind() -> None:
    view_args = request.view_args or {}
    form = request.form if request.mimetype == "application/x-www-form-urlencoded" else {}
    g.log_token = bind(request.environ, view_args.get("call_sid") or form.get("CallSid"),
                       view_args.get("callback_id") or request.args.get("cb"),
                       view_args.get("thread_id") or request.args.get("thread"))


def _unbind(exc: BaseException | None) -> None:
    token = g.pop("log_token", None)
    if token is not None:
        logs.unbind(token)


def echoed(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """The header that gives the request's id back, once it has one."""
    rid = environ.get(ENVIRON_KEY)
    return [(REQUEST_ID_HEADER, rid)] if rid else []


def _echo(response: Any) -> Any:
    for name, value in echoed(request.environ):
        response.headers[name] = value
    return response


def install(app: Flask) -> None:
    """Bind the ids before anything else runs for a request, answer with the request id, and unbind at its end."""
    app.before_request_funcs.setdefault(None, []).insert(0, _bind)
    app.after_request(_echo)
    app.teardown_request(_unbind)
