"""Logging for every process: readable text by default, one JSON object a line with LOG_FORMAT=json, and never a
phone number or a secret in either."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO
from urllib.parse import urlsplit

JSON = "json"
# What a line may say about the work it belongs to, besides its message.
FIELDS = ("request_id", "call_sid", "callback_id", "thread_id", "event_id")
# The environment's secrets, by their names: their values never reach a log line, whatever code logs them.
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|_KEYS$")
# A phone number in international form, as Twilio writes it (E.164) or as people do ("+1 (415) 555-0123"), also
# URL-encoded ("%2B1415…") as in a logged query or body.
_PHONE = re.compile(r"(?:\+|%2B)\d(?:[\s().-]{0,2}\d){6,14}(?!\d)", re.IGNORECASE)
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})
_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("threadline_log_context",
                                                                       default=MappingProxyType({}))


def mask_phone(phone: str) -> str:
    """A phone number fit for logs: its last two digits only."""
    return f"…{phone[-2:]}" if len(phone) > 2 else "…"


def is_json() -> bool:
    """Whether this process logs JSON lines (LOG_FORMAT=json)."""
    return os.environ.get("LOG_FORMAT", "").strip().lower() == JSON


@contextlib.contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    """Within the block, every line logged in this thread (or greenlet) names these ids; empty ones are left out."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: str | None) -> contextvars.Token[Mapping[str, str]]:
    """bound's start, for a framework's before/after hooks: the token undoes it (unbind)."""
    return _context.set({**_context.get(), **{k: v for k, v in fields.items() if v}})


def unbind(token: contextvars.Token[Mapping[str, str]]) -> None:
    _context.reset(token)


class Redactor:
    """Masks phone numbers and the environment's secret values in a text."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        secrets = {part.strip() for name, value in environ.items() if SECRET_NAME.search(name)
                   for part in value.split(",")}
        secrets.add(urlsplit(environ.get("REDIS_URL", "")).password or "")
        self.secrets = sorted((s for s in secrets if len(s) >= 8), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "[secret]")
        return _PHONE.sub(lambda m: mask_phone(m.group()), text) if ("+" in text or "%" in text) else text


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, process, the ids bound to the work, and the error."""

    def __init__(self, process: str = "", redact: Redactor | None = None) -> None:
        super().__init__()
        self.process = process or os.environ.get("THREADLINE_PROCESS", "") or os.path.basename(sys.argv[0])
        self.redact = redact or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00",
                                                                                                          "Z"),
            "level": record.levelname.lower(), "logger": record.name, "message": self.redact(record.getMessage()),
            "process": self.process, "pid": record.process}
        for key, value in (*_context.get().items(), *(getattr(record, "fields", None) or {}).items()):
            line[key] = self.redact(value) if isinstance(value, str) else value  # an access line's path, say
        if record.exc_info:
            line["error"] = self.redact(self.formatException(record.exc_info))
        elif record.stack_info:
            line["error"] = self.redact(self.formatStack(record.stack_info))
        # JSON leaves these unescaped, yet many readers (Python's splitlines among them) end a line at them.
        return json.dumps(line, ensure_ascii=False, default=str).translate(_LINE_BREAKS)


class Masked(logging.Formatter):
    """Another formatter's lines with phone numbers and secrets masked (gunicorn's own, in text)."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner, self.redact = inner or logging.Formatter(), Redactor()

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(self.inner.format(record))


class TextFormatter(logging.Formatter):
    """The readable default: time, level, logger and message, with phone numbers and secrets masked."""

    def __init__(self, process: str = "", redact: Redactor | None = None) -> None:
        prefix = f"{process} " if process else ""
        super().__init__(f"%(asctime)s {prefix}%(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        self.redact = redact or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


def formatter(process: str) -> logging.Formatter:
    """The formatter LOG_FORMAT asks for."""
    return JsonFormatter(process) if is_json() else TextFormatter(process)


def configure(process: str, stream: TextIO | None = None) -> None:
    """Route every logger of this process (rq's and the warnings module's included) through one handler on the
    root logger, at LOG_LEVEL (default info), as LOG_FORMAT says; uncaught errors in threads go there too."""
    os.environ.setdefault("THREADLINE_PROCESS", process)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(process))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO")
    for name in ("rq.worker", "rq.job", "rq.scheduler"):  # rq's CLI gave them handlers of their own
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
    # twilio's client writes ten lines of headers for every request at info: Threadline's own line says what it did.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    threading.excepthook = _thread_failed


def _thread_failed(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread else "?"
    logging.getLogger("threadline").error("thread %s failed", name,
                                          exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def exit_with(message: str, code: int = 1) -> None:
    """Stop the process with one line: a plain sentence, or a JSON line when LOG_FORMAT=json."""
    if is_json():
        record = logging.LogRecord("threadline", logging.CRITICAL, __file__, 0, message, None, None)
        print(JsonFormatter().format(record), file=sys.stderr, flush=True)
        raise SystemExit(code)
    raise SystemExit(message)
