"""Twilio webhook hygiene: signatures checked against the public URL, a replayed request answered once, and a failure
answered so that the caller hears our words."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from flask import Response, abort, current_app, request
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict
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


PENDING = "\x00pending"  # what a request's key holds while its first delivery is handled
REBUILT = "\x00rebuilt"  # what it holds when its claim reads what a repeat's answer is built from again


def public_url() -> str:
    """The URL Twilio signed: the path on PUBLIC_BASE_URL (behind a proxy) or on the request's own, with the raw
    query."""
    query = request.environ.get("QUERY_STRING", "")
    return absolute_url(request.path) + (f"?{query}" if query else "")


def require_twilio_signature() -> None:
    """Refuse (403) any request whose X-Twilio-Signature isn't valid for our auth token; read nothing else."""
    token = current_app.config.get("TWILIO_AUTH_TOKEN")
    if not signed(token, public_url(), request.form, request.headers.get("X-Twilio-Signature", "")):
        log.warning("refused a webhook to %s: %s", request.path,
                    "no TWILIO_AUTH_TOKEN configured" if not token else "bad or missing X-Twilio-Signature")
        abort(403)


def signed(token: str | None, url: str, form: MultiDict[str, str], signature: str) -> bool:
    """Whether signature is Twilio's for url and the form: one HMAC for the URL as it is, which is what Twilio signs;
    the library's tries with and without the port only when that fails. Never without a token and a signature."""
    if not token or not signature:
        return False
    validator = RequestValidator(token)
    expected = validator.compute_signature(url, form)
    return hmac.compare_digest(expected.encode(), signature.encode()) or validator.validate(url, form, signature)


def fingerprint(method: str, url: str, form: MultiDict[str, str]) -> str:
    """What Twilio signed: the method, the public URL and every parameter."""
    material = [method, url, *sorted(f"{k}={v}" for k, v in form.items(multi=True))]
    return hashlib.sha256("\n".join(material).encode()).hexdigest()


# A claim: given Redis, the request's fingerprint and its idempotency token's key (if it has one), the key its answer
# is kept under ("" for none: the claim itself reads again what a repeat's answer is built from) and, unless this
# delivery is the first, what is there now ("" when nothing is).
Claim = Callable[[redis.Redis, str, str | None], tuple[str, str | None]]


def _claim(store: redis.Redis, fingerprint: str, token_key: str | None) -> tuple[str, str | None]:
    """The signed fingerprint always applies, and the unsigned I-Twilio-Idempotency-Token can only narrow what counts
    as new (a token seen before repeats its first request)."""
    if token_key:
        with store.pipeline(transaction=False) as pipe:  # one round trip on every webhook that carries a token
            pipe.set(token_key, fingerprint, nx=True, ex=REPLAY_TTL)
            pipe.get(token_key)
            _, first = pipe.execute()
        fingerprint = first or fingerprint
    key = keys.webhook(fingerprint)
    return key, None if store.set(key, PENDING, nx=True, ex=REPLAY_TTL) else store.get(key) or ""


def token_key(token: str | None) -> str | None:
    """Where the I-Twilio-Idempotency-Token header's first request is noted, when a request carries one."""
    return keys.webhook(hashlib.sha256(f"token\n{token}".encode()).hexdigest()) if token else None


def answered_once(view: Callable[..., str] | None = None, *, claim: Claim = _claim) -> Any:
    """Run a TwiML view once per distinct request; a retry of it gets the same answer and changes nothing. A view
    whose own first round trip claims the request (reading what it needs with it) names that as its claim."""
    if view is None:
        return functools.partial(answered_once, claim=claim)

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        store: redis.Redis = REDIS.get()
        key, earlier = claim(store, fingerprint(request.method, public_url(), request.form),
                             token_key(request.headers.get("I-Twilio-Idempotency-Token")))
        if earlier is not None:
            deadline = time.monotonic() + REPLAY_WAIT
            while earlier == PENDING and time.monotonic() < deadline:
                time.sleep(0.05)  # the first delivery is still being handled
                earlier = store.get(key) or ""
            if earlier == PENDING:
                raise ReplayPending  # never run the handler twice at once: answered as a failure
            if earlier:
                return Response(earlier, mimetype="text/xml")
        try:
            body = view(*args, **kwargs)
        except Exception:
            if key:
                store.delete(key)  # a failure must not be replayed as an answer
            raise
        if key:
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
