"""The subset of Twilio's 2010-04-01 REST API the carrier serves: Calls (with their Events, Notifications and
Recordings), the account's Notifications and Recordings, IncomingPhoneNumbers and Keys. This module holds what
they share (authentication, Twilio's error shape, form parameters, list pages); the rest_* modules the routes."""

from __future__ import annotations

import hmac
import math
import operator
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from carrier.engine import Engine
from carrier.state import API_VERSION, CarrierState

bp = Blueprint("twilio_rest", __name__, url_prefix=f"/{API_VERSION}/Accounts/<account_sid>")


def blueprint() -> Blueprint:
    """The blueprint with every resource's routes on it."""
    # Imported here: the resource modules build on this one, and importing them puts their routes on `bp`.
    from carrier import rest_calls, rest_numbers, rest_recordings  # noqa: F401

    return bp

HTTP_URL = re.compile(r"^https?://[^\s/]+", re.IGNORECASE)
PAGING = ("PageSize", "Page", "PageToken")


class TwilioError(Exception):
    """Answered in Twilio's error shape, so the twilio library raises TwilioRestException."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@bp.errorhandler(TwilioError)
def _twilio_error(exc: TwilioError) -> Response:
    response = jsonify(code=exc.code, message=exc.message, more_info=f"https://www.twilio.com/docs/errors/{exc.code}",
                       status=exc.status)
    response.status_code = exc.status
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return response


def twilio_http_error(exc: HTTPException) -> Any:
    """Unknown paths and methods under the API answer in Twilio's error shape, as the twilio library expects."""
    code = 20404 if exc.code == 404 else 20001
    return _twilio_error(TwilioError(exc.code or 400, code, f"The requested resource {request.path} was not found"
                                     if exc.code == 404 else f"Method {request.method} not allowed on {request.path}"))


def state() -> CarrierState:
    return current_app.extensions["carrier.state"]


def engine() -> Engine:
    return current_app.extensions["carrier.engine"]


@bp.before_request
def _authenticate() -> None:
    """HTTP Basic with the account's SID and auth token, or with an API key's SID and secret (Twilio's recommended
    way); a Standard key reaches everything but the Keys resource, as Twilio documents."""
    records = state()
    auth = request.authorization
    user, password = (auth.username or "", auth.password or "") if auth and auth.type == "basic" else ("", "")
    if hmac.compare_digest(user, records.account_sid):
        ok, main = hmac.compare_digest(password, records.auth_token), True
    else:
        with records.lock:
            key = records.keys.get(user)
        ok, main = key is not None and hmac.compare_digest(password, key.secret), False
    if not ok:
        raise TwilioError(401, 20003, "Authenticate")
    if (request.view_args or {}).get("account_sid") != records.account_sid:
        raise not_found()
    if not main and "/Keys" in request.path:
        raise TwilioError(403, 20403, "A Standard API key cannot manage API keys; use the account's credentials")


def not_found() -> TwilioError:
    return TwilioError(404, 20404, f"The requested resource {request.path} was not found")


def lookup(records: dict[str, Any], sid: str) -> Any:
    """The record with that SID, or Twilio's 404."""
    with state().lock:
        record = records.get(sid)
    if record is None:
        raise not_found()
    return record


def remove(records: dict[str, Any], sid: str) -> Response:
    """Delete the record with that SID (Twilio's 404 if there is none) and answer as Twilio does: 204, no body."""
    with state().lock:
        if records.pop(sid, None) is None:
            raise not_found()
    return Response(status=204)


def url_param(name: str) -> str | None:
    value = request.form.get(name)
    if value and not HTTP_URL.match(value):
        raise TwilioError(400, 21205, f"{name} is not a valid URL: {value}")
    return value or None


def method_param(name: str) -> str:
    value = (request.form.get(name) or "POST").upper()
    if value not in ("GET", "POST"):
        raise TwilioError(400, 21209, f"{name} must be GET or POST")
    return value


def seconds(name: str, default: float, low: float, high: float) -> float:
    raw = request.form.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise TwilioError(400, 20001, f"{name} must be a number of seconds")
    return min(max(value, low), high)


def whole(name: str, default: int, low: int, high: int, code: int = 20001, source: Any = None) -> int:
    """A whole-number parameter within the bounds Twilio documents for it, or Twilio's error naming it."""
    raw = (request.form if source is None else source).get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise TwilioError(400, code, f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return value


def choice(name: str, allowed: tuple[str, ...], source: Any = None) -> str | None:
    """A parameter that takes one of a few values (Twilio's enums), or Twilio's 20001 naming it."""
    value = (request.args if source is None else source).get(name)
    if value and value not in allowed:
        raise TwilioError(400, 20001, f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value or None


def parse_time(name: str, value: str) -> datetime:
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise TwilioError(400, 20001, f"{name} must be a date (YYYY-MM-DD) or a UTC time (YYYY-MM-DDTHH:MM:SSZ)")


DATE_TESTS = (("", operator.eq), ("<", operator.le), (">", operator.ge))


def date_filters(*names: str) -> None:
    """Refuse a list whose date filters (`name`, `name<`, `name>`) are not dates, before any record is read."""
    for name in names:
        for suffix, _ in DATE_TESTS:
            if request.args.get(name + suffix):
                parse_time(name + suffix, request.args[name + suffix])


def by_date(name: str, moment: Any) -> bool:
    """Whether a record passes the date filters `name`, `name<` and `name>` (Twilio compares UTC dates: "Specify a
    date as YYYY-MM-DD in UTC"; a time given with it is not used). A record without that moment passes none."""
    for suffix, keep in DATE_TESTS:
        given = request.args.get(name + suffix)
        if given and (moment is None or not keep(moment.date(), parse_time(name + suffix, given).date())):
            return False
    return True


def page(key: str, items: list[dict[str, Any]], path: str) -> Response:
    """One page of a list, in Twilio's paging shape; PageSize outside 1-1000 or a negative Page is refused."""
    size = whole("PageSize", 50, 1, 1000, source=request.args)
    number = whole("Page", 0, 0, 10**9, source=request.args)
    start = number * size
    chunk = items[start:start + size]
    filters = {k: v for k, v in request.args.items() if k not in PAGING}
    path = f"/{API_VERSION}/Accounts/{state().account_sid}/{path}"

    def uri(at: int) -> str:
        query = {**filters, "PageSize": size, "Page": at}
        if at:
            query["PageToken"] = f"PA{at}"
        return f"{path}?{urlencode(query)}"

    return jsonify({key: chunk, "end": start + max(len(chunk) - 1, 0), "first_page_uri": uri(0),
                    "next_page_uri": uri(number + 1) if start + size < len(items) else None,
                    "page": number, "page_size": size, "previous_page_uri": uri(number - 1) if number else None,
                    "start": start, "uri": uri(number)})
