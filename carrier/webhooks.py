"""Signed webhook requests from the carrier to the application, with Twilio's failure codes."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import requests
from twilio.request_validator import RequestValidator

from carrier.twiml import Document, TwimlError, parse

TWIML_TYPES = ("text/xml", "application/xml", "text/html")
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 15


@dataclass
class Delivery:
    """What one webhook request did."""

    url: str
    method: str
    params: dict[str, str]
    status: int | None
    body: str
    content_type: str
    error_code: int | None
    message: str
    millis: int

    def record(self, kind: str, at: float) -> dict[str, object]:
        return {"at": at, "kind": kind, "url": self.url, "method": self.method, "status": self.status,
                "error_code": self.error_code, "message": self.message, "ms": self.millis, "params": self.params}


class WebhookFailed(Exception):
    def __init__(self, delivery: Delivery) -> None:
        super().__init__(delivery.message)
        self.delivery = delivery


class WebhookClient:
    """Sends form-encoded requests signed with the auth token, as Twilio does."""

    def __init__(self, auth_token: str) -> None:
        self.validator = RequestValidator(auth_token)
        self.session = requests.Session()

    def send(self, url: str, method: str, params: dict[str, str]) -> Delivery:
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
        began = time.monotonic()
        status, body, content_type, code, message = None, "", "", None, "ok"
        try:
            response = self.session.request(method, target, headers=headers, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                                            **kwargs)
            status, body = response.status_code, response.text
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if status >= 400:
                code, message = 11200, f"HTTP retrieval failure: the application answered {status}"
        except requests.Timeout:
            code, message = 11205, "HTTP connection failure: timed out"
        except (requests.RequestException, ValueError) as exc:  # ValueError: a URL requests can't parse
            code, message = 11205, f"HTTP connection failure: {type(exc).__name__}"
        millis = int((time.monotonic() - began) * 1000)
        return Delivery(url, method, dict(params), status, body, content_type, code, message, millis)

    def fetch_twiml(self, url: str, method: str, params: dict[str, str]) -> tuple[Document, Delivery]:
        """Request TwiML; raise WebhookFailed (11200, 11205, 12300, 12100) when it can't be run."""
        delivery = self.send(url, method, params)
        if delivery.error_code is None and delivery.content_type not in TWIML_TYPES:
            delivery.error_code = 12300
            delivery.message = f"Invalid Content-Type: {delivery.content_type or 'none'}"
        if delivery.error_code is None:
            try:
                return parse(delivery.body, url), delivery
            except TwimlError as exc:
                delivery.error_code, delivery.message = exc.code, f"Document parse failure: {exc}"
        raise WebhookFailed(delivery)
