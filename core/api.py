"""JSON API conventions: errors as JSON, bearer-key auth, bodies validated by pydantic models."""

from __future__ import annotations

import hmac
import json
import logging
import re
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

from core import outage
from core.validation import problems

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
               415: "unsupported_media_type", 422: "invalid_field", 503: "unavailable"}


class ApiError(Exception):
    """An error answered as {"error": {"code", "message", "field"?}} with an HTTP status."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.details = status, code, message, field, details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        if self.details:
            body["details"] = self.details
        return {"error": body}


def _error_from_validation(exc: ValidationError, prefix: tuple[str, ...] = ()) -> ApiError:
    details = problems(exc, prefix)
    first = details[0]
    return ApiError(422, first["code"], f"{first['field']}: {first['message']}", first["field"], details)


def validate(model: type[BaseModel], data: Any, prefix: tuple[str, ...] = ()) -> Any:
    """Validate data against model, raising a 422 ApiError that names the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _error_from_validation(exc, prefix) from None


def json_depth(raw: bytes) -> int:
    """How deeply raw's arrays and objects nest, counted without parsing (so no depth can exhaust the stack)."""
    depth = deepest = 0
    for bracket in _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKET):
        depth += 1 if bracket in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def json_body(model: type[BaseModel]) -> Any:
    """Parse the request's JSON body into model; every failure is an ApiError naming what is wrong."""
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "the body must be JSON (Content-Type: application/json)",
                       "Content-Type")
    raw = request.get_data(cache=True)  # raises RequestEntityTooLarge past MAX_CONTENT_LENGTH
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise ApiError(400, "too_deep", f"the body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep",
                       "body")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    return validate(model, data)


def require_api_key(bp: Blueprint, config_key: str = "THREADLINE_API_KEYS") -> None:
    """Refuse every request to bp that lacks a bearer key listed in config[config_key]."""

    @bp.before_request
    def _check_key() -> None:
        keys: list[str] = current_app.config.get(config_key) or []
        if not keys:
            raise ApiError(401, "unauthorized", f"the API is closed: no keys are configured ({config_key})")
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise ApiError(401, "unauthorized", "send an API key as 'Authorization: Bearer <key>'",
                           "Authorization")
        # Compare against every key so the time taken says nothing about which one nearly matched.
        matches = [hmac.compare_digest(presented.strip().encode(), k.encode()) for k in keys]
        if not any(matches):
            raise ApiError(401, "unauthorized", "the API key is not valid", "Authorization")


def _is_api_request() -> bool:
    return request.path.startswith(API_PREFIX + "/") or request.path == API_PREFIX


def respond(error: ApiError) -> Any:
    """The JSON response that answers error."""
    response = jsonify(error.to_dict())
    response.status_code = error.status
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="threadline"'
    return response


def unavailable(exc: BaseException) -> Any:
    """Redis is away: a 503 with Retry-After, as JSON on the API and as a page in words elsewhere."""
    if not _is_api_request():
        return outage.unavailable_page(exc)
    outage.note(exc, "503")
    return outage.with_retry_after(respond(ApiError(503, "unavailable", outage.MESSAGE)))


def register_error_handlers(app: Flask) -> None:
    """Answer API errors, HTTP errors on API paths and unexpected failures there as JSON; no API answer is cached."""

    @app.after_request
    def _no_store(response: Any) -> Any:
        if _is_api_request():
            response.headers["Cache-Control"] = "no-store"  # answers carry customer data
        return response

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Any:
        return respond(exc)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        if not _is_api_request():
            return exc
        status = exc.code or 500
        message = exc.description or exc.name
        if isinstance(exc, RequestEntityTooLarge):
            limit = current_app.config["MAX_CONTENT_LENGTH"]
            message = f"the body is larger than the limit of {limit} bytes"
        response = respond(ApiError(status, _HTTP_CODES.get(status, "http_error"), message))
        for name, value in exc.get_headers():  # e.g. a 405's Allow
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        if outage.is_outage(exc):
            return unavailable(exc)
        log.exception("unexpected error on %s %s", request.method, request.path)
        if not _is_api_request():
            return InternalServerError()
        return respond(ApiError(500, "internal_error", "an unexpected error occurred; it has been logged"))
