"""Signed webhook requests from the carrier to the application as Twilio makes them: connection overrides and
retries with one idempotency token, a cookie jar per call, what each answer's content type means, failure codes."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from typing import NamedTuple
from urllib.parse import parse_qsl, urldefrag, urlencode

import requests
from requests.cookies import RequestsCookieJar, extract_cookies_to_jar
from twilio.request_validator import RequestValidator

from carrier.named import TWIML, NamedUrls
from carrier.twiml import Document, Node, TwimlError, parse

TWIML_TYPES = ("text/xml", "application/xml", "text/html")
TEXT_TYPE = "text/plain"  # Twilio reads the text out loud, then hangs up
# The audio <Play> takes, which Twilio plays, then hangs up, when a webhook answers with it.
AUDIO_TYPES = ("audio/mpeg", "audio/wav", "audio/wave", "audio/x-wav", "audio/aiff", "audio/x-aifc", "audio/x-aiff",
               "audio/x-gsm", "audio/gsm", "audio/ulaw")
# Twilio's connection overrides (#ct=…&rt=…&tt=…&rc=…&rp=… on a webhook URL): (min, max, default), milliseconds
# for the timeouts and a count for retries.
LIMITS = {"ct": (100, 10000, 5000), "rt": (100, 15000, 15000), "tt": (100, 15000, 15000), "rc": (0, 5, 1)}
POLICIES = {"ct", "rt", "4xx", "5xx", "all"}
DEFAULT_POLICY = frozenset({"ct"})  # by default only a failure to connect is retried


@dataclass(frozen=True)
class Overrides:
    """How one webhook URL asks to be requested: timeouts in seconds, retries and what they retry."""

    connect: float
    read: float
    total: float
    retries: int
    policy: frozenset[str]

    @classmethod
    def of(cls, url: str) -> Overrides:
        """The URL's overrides; a value out of range or unknown keeps Twilio's default."""
        fragment = dict(parse_qsl(urldefrag(url)[1]))
        values = {}
        for key, (low, high, default) in LIMITS.items():
            raw = fragment.get(key, "")
            values[key] = int(raw) if raw.isdigit() and low <= int(raw) <= high else default
        asked = {part.strip() for part in fragment.get("rp", "").split(",") if part.strip()}
        policy = frozenset(asked) if asked and asked <= POLICIES else DEFAULT_POLICY
        return cls(values["ct"] / 1000, values["rt"] / 1000, values["tt"] / 1000, values["rc"], policy)

    def retries_after(self, failure: str | None) -> bool:
        return failure is not None and bool({failure, "all"} & self.policy)


class Outcome(NamedTuple):
    """What one attempt got: the answer, or Twilio's error code and message."""

    status: int | None
    body: str
    content_type: str
    error_code: int | None
    message: str
    final_url: str


@dataclass
class Delivery:
    """What one webhook request did (with its retries)."""

    url: str
    method: str
    params: dict[str, str]
    status: int | None
    body: str
    content_type: str
    error_code: int | None
    message: str
    millis: int
    attempts: int = 1
    final_url: str = ""  # where the answer came from, after any HTTP redirects

    def record(self, kind: str, at: float) -> dict[str, object]:
        return {"at": at, "kind": kind, "url": self.url, "method": self.method, "status": self.status,
                "error_code": self.error_code, "message": self.message, "ms": self.millis,
                "attempts": self.attempts, "params": self.params}


class WebhookFailed(Exception):
    def __init__(self, delivery: Delivery) -> None:
        super().__init__(delivery.message)
        self.delivery = delivery


class WebhookClient:
    """Sends form-encoded requests signed with the auth token, as Twilio does; each call keeps its own cookies."""

    def __init__(self, auth_token: str) -> None:
        self.validator = RequestValidator(auth_token)
        self.session = requests.Session()
        # The session's own jar takes no cookie: cookies live in each call's jar, never shared between calls.
        self.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self.jars: dict[str, RequestsCookieJar] = {}
        self.lock = threading.Lock()
        self.named = NamedUrls()

    def forget(self, call_sid: str) -> None:
        """The call has ended: its cookies go with it."""
        with self.lock:
            self.jars.pop(call_sid, None)

    def _jar(self, call_sid: str | None) -> RequestsCookieJar:
        if not call_sid:
            return RequestsCookieJar()
        with self.lock:
            return self.jars.setdefault(call_sid, RequestsCookieJar())

    def send(self, url: str, method: str, params: dict[str, str], *, role: str = TWIML) -> Delivery:
        """Request url (TwiML, or a callback for role "callback"), retrying as its connection overrides say, every
        attempt with the same I-Twilio-Idempotency-Token."""
        self.named.check(url, role)
        overrides = Overrides.of(url)
        url = urldefrag(url)[0]  # the fragment is for Twilio: it is neither sent nor signed
        method = (method or "POST").upper()
        headers = {"User-Agent": "TwilioProxy/1.1 (threadline-carrier)",
                   "I-Twilio-Idempotency-Token": secrets.token_hex(16)}
        if method == "GET":
            target = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}" if params else url
            headers["X-Twilio-Signature"] = self.validator.compute_signature(target, {})
            kwargs: dict[str, object] = {}
        else:
            target = url
            headers["X-Twilio-Signature"] = self.validator.compute_signature(url, params)
            kwargs = {"data": params}
        jar = self._jar(params.get("CallSid"))
        began = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            outcome, failure = self._attempt(method, target, headers, jar, overrides, kwargs)
            spent = time.monotonic() - began
            if attempts > overrides.retries or spent >= overrides.total or not overrides.retries_after(failure):
                break
        return Delivery(url, method, dict(params), outcome.status, outcome.body, outcome.content_type,
                        outcome.error_code, outcome.message, int(spent * 1000), attempts, outcome.final_url or url)

    def _attempt(self, method: str, target: str, headers: dict[str, str], jar: RequestsCookieJar,
                 overrides: Overrides, kwargs: dict[str, object]) -> tuple[Outcome, str | None]:
        """One request: what it got, and its failure class (ct, rt, 4xx, 5xx) when it failed."""
        try:
            response = self.session.request(method, target, headers=headers, cookies=jar,
                                            timeout=(overrides.connect, overrides.read), **kwargs)
        except requests.ConnectTimeout:
            return Outcome(None, "", "", 11205, "HTTP connection failure: timed out", ""), "ct"
        except requests.Timeout:
            return Outcome(None, "", "", 11205, "HTTP connection failure: timed out", ""), "rt"
        except (requests.RequestException, ValueError) as exc:  # ValueError: a URL requests can't parse
            return Outcome(None, "", "", 11205, f"HTTP connection failure: {type(exc).__name__}", ""), "ct"
        for answer in (*response.history, response):
            extract_cookies_to_jar(jar, answer.request, answer.raw)
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        body = "" if content_type.startswith("audio/") else response.text
        code, message, failure = None, "ok", None
        if response.status_code >= 400:
            code, message = 11200, f"HTTP retrieval failure: the application answered {response.status_code}"
            failure = f"{response.status_code // 100}xx"
        return Outcome(response.status_code, body, content_type, code, message, response.url), failure

    def fetch_twiml(self, url: str, method: str, params: dict[str, str]) -> tuple[Document, Delivery]:
        """Request TwiML (or text to speak, or audio to play); raise WebhookFailed (11200, 11205, 12300, 12100)
        when it can't be run."""
        delivery = self.send(url, method, params)
        if delivery.error_code is None:
            # Relative URLs in the answer resolve against where it came from, after any HTTP redirect.
            where, kind = delivery.final_url, delivery.content_type
            if kind in TWIML_TYPES:
                try:
                    document = parse(delivery.body, where)
                except TwimlError as exc:
                    delivery.error_code, delivery.message = exc.code, f"Document parse failure: {exc}"
                else:
                    self.named.name_twiml(delivery.body, where)
                    return document, delivery
            elif kind == TEXT_TYPE:
                return Document(where, [Node("Say", {}, delivery.body.strip())]), delivery
            elif kind in AUDIO_TYPES:
                return Document(where, [Node("Play", {}, where)]), delivery
            else:
                delivery.error_code = 12300
                delivery.message = f"Invalid Content-Type: {kind or 'none'}"
        raise WebhookFailed(delivery)
