"""A call in's first webhook answered ahead of Flask's request machinery: the same signature check, claim and answer as
the Flask route (voice/webhooks.py), which stays the reference and takes every request this lane does not finish."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask
from werkzeug.datastructures import MultiDict

from core import logs, metrics, request_log
from core.urls import absolute_url
from voice.inbound import CLAIMED, Claimed, claim_call
from voice.security import fingerprint, signed, token_key
from voice.webhooks import answer_incoming

PATH = "/voice/incoming"
FORM = "application/x-www-form-urlencoded"
# Twilio's parameters for a call come to about a kilobyte; a larger body goes to Flask, whose limits apply.
MAX_BODY = 64 * 1024
CONTENT_TYPE = "text/xml; charset=utf-8"  # as Flask's Response(..., mimetype="text/xml") says it

StartResponse = Callable[..., Any]


class FastLane:
    """WSGI middleware: answers POST /voice/incoming itself when the call in's claim is made in its one round trip and
    its answer built; anything else goes on to Flask, with the claim when one was made (never made twice). A
    failure here goes on too: Flask meets it again and answers it as every webhook's, logged once."""

    def __init__(self, app: Flask) -> None:
        self.app, self.next = app, app.wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body = self._body(environ)
        if body is None:
            return self.next(environ, start_response)
        started = time.perf_counter()
        answer = self._answer(environ, body)
        if answer is None:
            environ["wsgi.input"] = io.BytesIO(body)  # read again by Flask
            return self.next(environ, start_response)
        start_response("200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(answer))),
                                  *request_log.echoed(environ)])
        metrics.observe_webhook(PATH, 200, started)
        return [answer]

    def _body(self, environ: dict[str, Any]) -> bytes | None:
        """The body of a request this lane may answer, read; None for any other request (left unread)."""
        if (environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST" or environ.get("QUERY_STRING")
                or not self.app.config.get("PUBLIC_BASE_URL")  # else the URL signed is the request's own: Flask's
                or environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != FORM):
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None  # none given (chunked) or nonsense
        if not 0 <= length <= MAX_BODY:
            return None
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        return body

    def _answer(self, environ: dict[str, Any], body: bytes) -> bytes | None:
        """The TwiML answer, or None to go on to Flask (the claim, when made, put where its view finds it)."""
        try:
            # As Flask parses a form (werkzeug's FormDataParser), so both check the same parameters.
            form = MultiDict(parse_qsl(body.decode(), keep_blank_values=True, errors="werkzeug.url_quote"))
        except UnicodeDecodeError:
            return None
        claimed: Claimed | None = None
        token = request_log.bind(environ, form.get("CallSid"))
        try:
            with self.app.app_context():
                url = absolute_url(PATH)
                if not signed(self.app.config.get("TWILIO_AUTH_TOKEN"), url, form,
                              environ.get("HTTP_X_TWILIO_SIGNATURE", "")):
                    return None  # refused, and logged, by Flask
                claimed = claim_call(form, fingerprint("POST", url, form),
                                     token_key(environ.get("HTTP_I_TWILIO_IDEMPOTENCY_TOKEN")))
                if claimed.key or claimed.earlier is not None:
                    environ[CLAIMED] = claimed  # a repeat, or a brand only the long way compares
                    return None
                return answer_incoming(claimed.call, form).encode()
        except Exception:
            if claimed is not None:
                environ[CLAIMED] = claimed
            return None
        finally:
            logs.unbind(token)
