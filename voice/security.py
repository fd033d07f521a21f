"""Twilio webhook hygiene: signatures checked against the public URL, a replayed request answered once, and a failure
answered so that the caller hears our words."""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from flask import Response, abort, current_app, request
from twilio.request_validator import RequestValidator
from werkzeug.exceptions import HTTPException

from core import keys, outage
from core.extensions import REDIS
from core.urls import absolute_url
from voice import twiml
from voice.prompts import prompt

log = logging.getLogger(__name__)

REPLAY_TTL = 3600
REPLAY_WAIT = 15  # Twilio's own timeout for a webhook


class ReplayPending(Exception):
    """A retry arrived while the first delivery of the same request is still being handled."""
_PENDING = "\x00pending"


def public_url() -> str:
    """The URL Twilio signed: the path on PUBLIC_BASE_URL (behind a proxy) or on the request's own, with the raw
    query."""
    query = request.environ.get("QUERY_STRING", "")
    return absolute_url(request.path) + (f"?{query}" if query else "")


def require_twilio_signature() -> None:
    """Refuse (403) any request whose X-Twilio-Signature isn't valid for our auth token; read nothing else."""
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature or not RequestValidator(token).validate(public_url(), request.form, signature):
        log.warning("refused a webhook to %s: %s", request.path,
                    "no TWILIO_AUTH_TOKEN configured" if not token else "bad or missing X-Twilio-Signature")
        abort(403)


def _fingerprint() -> str:
    """What Twilio signed: the method, the public URL and every parameter."""
    material = [request.method, public_url(), *sorted(f"{k}={v}" for k, v in request.form.items(multi=True))]
    return hashlib.sha256("\n".join(material).encode()).hexdigest()


def _replay_key(store: redis.Redis) -> str:
    """The key of the request this one repeats: the signed fingerprint always applies, and the unsigned
    I-Twilio-Idempotency-Token can only narrow what counts as new (a token seen before repeats its first request)."""
    fingerprint = _fingerprint()
    token = request.headers.get("I-Twilio-Idempotency-Token")
    if token:
        token_key = keys.webhook(hashlib.sha256(f"token\n{token}".encode()).hexdigest())
        with store.pipeline(transaction=False) as pipe:  # one round trip on every webhook that carries a token
            pipe.set(token_key, fingerprint, nx=True, ex=REPLAY_TTL)
            pipe.get(token_key)
            _, first = pipe.execute()
        fingerprint = first or fingerprint
    return keys.webhook(fingerprint)


def answered_once(view: Callable[..., str]) -> Callable[..., Response]:
    """Run a TwiML view once per distinct request; a retry of it gets the same answer and changes nothing."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        store: redis.Redis = REDIS.get()
        key = _replay_key(store)
        if not store.set(key, _PENDING, nx=True, ex=REPLAY_TTL):
            deadline = time.monotonic() + REPLAY_WAIT
            while (earlier := store.get(key)) == _PENDING and time.monotonic() < deadline:
                time.sleep(0.05)  # the first delivery is still being handled
            if earlier == _PENDING:
                raise ReplayPending  # never run the handler twice at once: answered as a failure
            if earlier:
                return Response(earlier, mimetype="text/xml")
        try:
            body = view(*args, **kwargs)
        except Exception:
            store.delete(key)  # a failure must not be replayed as an answer
            raise
        store.set(key, body, ex=REPLAY_TTL)
        return Response(body, mimetype="text/xml")

    return wrapper


def status_callback(view: Callable[..., Response]) -> Callable[..., Response]:
    """Mark view as a callback whose body Twilio ignores (call status, recording status): no caller hears it."""
    view.ignored_by_twilio = True  # type: ignore[attr-defined]
    return view


def _is_status_callback() -> bool:
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "ignored_by_twilio", False))


def webhook_failed(exc: Exception) -> Any:
    """A webhook that failed: a caller hears our apology, with 200 since Twilio plays no TwiML from an error status
    (it would try the number's fallback URL, else say its own words); a status callback gets an empty document and
    503 while Redis is away (so Twilio's debugger shows the update was lost), 500 otherwise."""
    if isinstance(exc, HTTPException):
        return exc
    sid, ignored = request.form.get("CallSid", "?"), _is_status_callback()
    if outage.is_outage(exc):
        outage.note(exc, f"{'503' if ignored else 'an apology'} for call {sid}")
        if ignored:
            return outage.with_retry_after(Response(twiml.empty(), status=503, mimetype="text/xml"))
    else:
        log.exception("webhook %s failed for call %s", request.path, sid)
        if ignored:
            return Response(twiml.empty(), status=500, mimetype="text/xml")
    body = twiml.say_and_hang_up([prompt("en-US", "error")], twiml.FALLBACK_SPEECH)
    return Response(body, mimetype="text/xml")
