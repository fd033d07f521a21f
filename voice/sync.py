"""Pointing a Twilio number at Threadline's voice webhooks, for the admin API, the CLI and the desk alike."""

from __future__ import annotations

import json
from typing import Any

import requests
from flask import current_app
from pydantic import BaseModel, ConfigDict, Field
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from core.extensions import TWILIO
from directory.service import DIRECTORY, DirectoryError

# What takes a number's calls instead of its Voice URL: Twilio "ignores all of the voice urls" while one is set.
_ROUTES = {"trunk_sid": "a SIP trunk", "voice_application_sid": "a TwiML App"}


class Change(BaseModel):
    """One field of the Twilio number: its value before and after the sync."""

    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True)

    from_: str | None = Field(alias="from")
    to: str


class SyncReport(BaseModel):
    """What a sync changed on the Twilio number; no changes when it already pointed at Threadline."""

    number: str
    sid: str
    changes: dict[str, Change]


def _wanted_settings() -> dict[str, str]:
    base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    if not base:
        raise DirectoryError(409, "public_base_url_not_configured",
                             "set PUBLIC_BASE_URL (the https address Twilio reaches Threadline at) before syncing")
    return {"voice_url": f"{base}/voice/incoming", "voice_method": "POST",
            "status_callback": f"{base}/voice/status", "status_callback_method": "POST"}


def _twilio() -> Client:
    client = TWILIO.get()
    if client is None:
        raise DirectoryError(409, "twilio_not_configured",
                             "Twilio is not configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    return client


def _routes(record: Any) -> dict[str, str]:
    """The TwiML App or SIP trunk the number is attached to, by field; Twilio may show none as null or empty."""
    return {name: getattr(record, name) for name in _ROUTES if getattr(record, name, None)}


def _attached(e164: str, routes: dict[str, str]) -> str:
    things = " and ".join(f"{_ROUTES[name]} ({sid})" for name, sid in routes.items())
    return f"the Twilio number {e164} is attached to {things}"


def _point_at_threadline(client: Client, e164: str, wanted: dict[str, str], force: bool, remedy: str) -> SyncReport:
    found = [n for n in client.incoming_phone_numbers.list(phone_number=e164) if n.phone_number == e164]
    if not found:
        raise DirectoryError(404, "not_found", f"the Twilio account has no number {e164}", "number")
    record = found[0]
    routes = _routes(record)
    if routes and not force:
        raise DirectoryError(409, "number_attached", f"{_attached(e164, routes)}; Twilio never calls its Voice URL "
                             f"while it is. {remedy}")
    changes = {name: Change(from_=getattr(record, name), to=value) for name, value in wanted.items()
               if getattr(record, name) != value}
    changes.update({name: Change(from_=sid, to="") for name, sid in routes.items()})  # an empty SID detaches
    if changes:
        updated = record.update(**{name: change.to for name, change in changes.items()})
        if kept := _routes(updated):  # Twilio's documents don't say how to detach: check that it took
            raise DirectoryError(502, "twilio_error", f"{_attached(e164, kept)} still: Twilio did not detach it")
    return SyncReport(number=e164, sid=record.sid, changes=changes)


def _twilio_message(exc: TwilioException) -> str:
    """Twilio's own message: a TwilioRestException's, or the error body of a page that failed to load."""
    if isinstance(exc, TwilioRestException):
        return exc.msg
    response = exc.args[-1] if exc.args else None
    try:
        body = json.loads(response.text)
        return f"{body['message']} (HTTP {response.status_code})"
    except (AttributeError, TypeError, ValueError, KeyError):
        return str(exc.args[0] if exc.args else exc)


def sync_number(e164: str, force: bool, remedy: str) -> SyncReport:
    """Point the Twilio number e164 at Threadline's voice webhooks and report the fields that changed; a number
    attached to a TwiML App or SIP trunk is a 409 saying so and ending with remedy, unless force detaches it."""
    DIRECTORY.get().number(e164)
    client, wanted = _twilio(), _wanted_settings()
    try:
        return _point_at_threadline(client, e164, wanted, force, remedy)
    except TwilioException as exc:
        raise DirectoryError(502, "twilio_error", f"Twilio refused the request: {_twilio_message(exc)}") from None
    except requests.RequestException as exc:
        raise DirectoryError(502, "twilio_error", f"cannot reach Twilio: {exc}") from None
