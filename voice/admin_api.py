"""The admin API: support numbers, agents, and pointing a Twilio number at Threadline; shared with the CLI."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Blueprint, current_app
from pydantic import BaseModel, ConfigDict, Field, RootModel, TypeAdapter, ValidationError
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from context.schemas import Strict
from core import keys
from core.api import API_PREFIX, ApiError, require_api_key
from core.openapi import API
from voice.numbers import (
    E164,
    Agent,
    AgentConfig,
    AgentId,
    AgentList,
    AgentStore,
    Number,
    NumberConfig,
    NumberList,
    NumberStore,
)

bp = Blueprint("admin", __name__, url_prefix=API_PREFIX)
require_api_key(bp, "THREADLINE_ADMIN_KEYS")

_NUMBER = TypeAdapter(E164)
_AGENT_ID = TypeAdapter(AgentId)
_NUMBER_NOT_FOUND = ("no such support number is configured", None)
_AGENT_NOT_FOUND = ("no agent with that id", None)
# What takes a number's calls instead of its Voice URL: Twilio "ignores all of the voice urls" while one is set.
_ROUTES = {"trunk_sid": "a SIP trunk", "voice_application_sid": "a TwiML App"}
_API_FORCE = 'Sync again with {"force": true} to detach it.'


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


class SyncOptions(Strict):
    """How to sync: force detaches the number from a TwiML App or SIP trunk, which keep Twilio off its Voice URL."""

    force: bool = Field(False, description="detach the number from its TwiML App or SIP trunk (the SID is set to "
                                           "empty); without it such a number is refused with 409")


class NoContent(RootModel[None]):
    """An empty answer: with status 204 the server sends no body."""

    root: None = None


def number_store() -> NumberStore:
    """The app's NumberStore."""
    return current_app.extensions["threadline.numbers"]


def agent_store() -> AgentStore:
    """The app's AgentStore."""
    return current_app.extensions["threadline.agents"]


def _now() -> datetime:
    return datetime.now(UTC)


def _checked(adapter: TypeAdapter[str], raw: str, field: str) -> str:
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        message = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise ApiError(422, "invalid_field", f"{field}: {message}", field) from None


def checked_number(raw: str, field: str = "number") -> str:
    """The number in E.164, or a 422 naming field."""
    return _checked(_NUMBER, raw, field)


def checked_agent_id(raw: str) -> str:
    """A valid agent id, or a 422 naming the field "agent_id"."""
    return _checked(_AGENT_ID, raw, "agent_id")


def check_agents(agent_ids: list[str], prefix: str = "", planned: Collection[str] = ()) -> None:
    """Refuse (422) agent ids neither stored nor planned, naming the first as {prefix}agents[i]."""
    stored = agent_store().exists(agent_ids)
    details = [{"code": "unknown_agent", "field": f"{prefix}agents[{i}]", "message": f"unknown agent {agent_id!r}"}
               for i, (agent_id, known) in enumerate(zip(agent_ids, stored, strict=True))
               if not known and agent_id not in planned]
    if details:
        first = details[0]
        raise ApiError(422, "unknown_agent", f"{first['field']}: {first['message']}", first["field"], details)


def get_number(e164: str) -> Number:
    """The configured number, or a 404."""
    number = number_store().get(e164)
    if number is None:
        raise ApiError(404, "not_found", f"no support number {e164} is configured", "number")
    return number


def put_number(e164: str, config: NumberConfig) -> tuple[Number, bool]:
    """Store config for e164 once its agents exist; True when the number is new."""
    check_agents(config.agents)
    return number_store().put(e164, config, _now())


def delete_number(e164: str) -> None:
    """Remove the number's configuration, or a 404."""
    if not number_store().delete(e164):
        raise ApiError(404, "not_found", f"no support number {e164} is configured", "number")


def get_agent(agent_id: str) -> Agent:
    """The agent, or a 404."""
    agent = agent_store().get(agent_id)
    if agent is None:
        raise ApiError(404, "not_found", f"no agent {agent_id!r}", "agent_id")
    return agent


def put_agent(agent_id: str, config: AgentConfig) -> tuple[Agent, bool]:
    """Store the agent; True when it is new."""
    return agent_store().put(agent_id, config, _now())


def delete_agent(agent_id: str) -> None:
    """Remove the agent unless a number still lists it (409), or a 404."""
    numbers = number_store().using_agent(agent_id)
    if numbers:
        raise ApiError(409, "agent_in_use", f"agent {agent_id!r} answers {', '.join(numbers)}; remove it from "
                       "those numbers first", "agent_id")
    if not agent_store().delete(agent_id):
        raise ApiError(404, "not_found", f"no agent {agent_id!r}", "agent_id")
    # An agent created again under this id must not inherit the old password or signed-in desks.
    redis_client = agent_store().redis
    sessions = redis_client.smembers(keys.agent_desk_sessions(agent_id))
    redis_client.delete(keys.agent_password(agent_id), keys.login_attempts(agent_id), keys.login_lock(agent_id),
                        keys.agent_desk_sessions(agent_id), *[keys.desk_session(s) for s in sessions])


def _wanted_settings() -> dict[str, str]:
    base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    if not base:
        raise ApiError(409, "public_base_url_not_configured",
                       "set PUBLIC_BASE_URL (the https address Twilio reaches Threadline at) before syncing")
    return {"voice_url": f"{base}/voice/incoming", "voice_method": "POST",
            "status_callback": f"{base}/voice/status", "status_callback_method": "POST"}


def _twilio() -> Client:
    client = current_app.extensions.get("threadline.twilio")
    if client is None:
        raise ApiError(409, "twilio_not_configured",
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
        raise ApiError(404, "not_found", f"the Twilio account has no number {e164}", "number")
    record = found[0]
    routes = _routes(record)
    if routes and not force:
        raise ApiError(409, "number_attached", f"{_attached(e164, routes)}; Twilio never calls its Voice URL "
                       f"while it is. {remedy}")
    changes = {name: Change(from_=getattr(record, name), to=value) for name, value in wanted.items()
               if getattr(record, name) != value}
    changes.update({name: Change(from_=sid, to="") for name, sid in routes.items()})  # an empty SID detaches
    if changes:
        updated = record.update(**{name: change.to for name, change in changes.items()})
        if kept := _routes(updated):  # Twilio's documents don't say how to detach: check that it took
            raise ApiError(502, "twilio_error", f"{_attached(e164, kept)} still: Twilio did not detach it")
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


def sync_number(e164: str, force: bool = False, remedy: str = _API_FORCE) -> SyncReport:
    """Point the Twilio number e164 at Threadline's voice webhooks and report the fields that changed; a number
    attached to a TwiML App or SIP trunk is a 409 saying so and ending with remedy, unless force detaches it."""
    get_number(e164)
    client, wanted = _twilio(), _wanted_settings()
    try:
        return _point_at_threadline(client, e164, wanted, force, remedy)
    except TwilioException as exc:
        raise ApiError(502, "twilio_error", f"Twilio refused the request: {_twilio_message(exc)}") from None
    except requests.RequestException as exc:
        raise ApiError(502, "twilio_error", f"cannot reach Twilio: {exc}") from None


@API.route(bp, "/numbers", "GET", summary="List the support numbers",
           responses={200: ("every configured number, by number", NumberList)})
def list_numbers() -> tuple[NumberList, int]:
    return NumberList(numbers=number_store().all()), 200


@API.route(bp, "/numbers/<number>", "PUT", body=NumberConfig, summary="Configure a support number",
           description="The path number may be in any form with a country code (URL-encode the +); it is stored "
                       "in E.164. Every agent listed must exist.",
           responses={200: ("replaced", Number), 201: ("created", Number)})
def put_number_view(number: str, body: NumberConfig) -> tuple[Number, int]:
    stored, created = put_number(checked_number(number), body)
    return stored, 201 if created else 200


@API.route(bp, "/numbers/<number>", "GET", summary="Read a support number's configuration",
           responses={200: ("the number", Number), 404: _NUMBER_NOT_FOUND})
def get_number_view(number: str) -> tuple[Number, int]:
    return get_number(checked_number(number)), 200


@API.route(bp, "/numbers/<number>", "DELETE", summary="Remove a support number's configuration",
           responses={204: ("removed", None), 404: _NUMBER_NOT_FOUND})
def delete_number_view(number: str) -> tuple[NoContent, int]:
    delete_number(checked_number(number))
    return NoContent(), 204


@API.route(bp, "/numbers/<number>/sync", "POST", body=SyncOptions, optional_body=True,
           summary="Point the Twilio number at Threadline",
           description="Sets the number's Voice URL to PUBLIC_BASE_URL/voice/incoming and its status callback to "
                       "PUBLIC_BASE_URL/voice/status (both POST), and reports the fields that changed. Twilio never "
                       "calls the Voice URL of a number attached to a TwiML App or SIP trunk (voice_application_sid, "
                       "trunk_sid): such a number is refused with 409 (code number_attached) and left alone, unless "
                       "the body is {\"force\": true}, which sets that field to empty (detaching the number) and "
                       "reports it among the changes. The body is optional.",
           responses={200: ("what changed", SyncReport), 404: ("not configured here, or not in the Twilio account",
                                                               None),
                      409: ("the number is attached to a TwiML App or SIP trunk (and force was not given), or "
                            "Twilio or PUBLIC_BASE_URL is not configured", None),
                      502: ("Twilio refused the request or could not be reached", None)})
def sync_number_view(number: str, body: SyncOptions) -> tuple[SyncReport, int]:
    return sync_number(checked_number(number), body.force), 200


@API.route(bp, "/agents", "GET", summary="List the agents",
           responses={200: ("every agent, by id", AgentList)})
def list_agents() -> tuple[AgentList, int]:
    return AgentList(agents=agent_store().all()), 200


@API.route(bp, "/agents/<agent_id>", "PUT", body=AgentConfig, summary="Create or replace an agent",
           responses={200: ("replaced", Agent), 201: ("created", Agent)})
def put_agent_view(agent_id: str, body: AgentConfig) -> tuple[Agent, int]:
    stored, created = put_agent(checked_agent_id(agent_id), body)
    return stored, 201 if created else 200


@API.route(bp, "/agents/<agent_id>", "GET", summary="Read an agent",
           responses={200: ("the agent", Agent), 404: _AGENT_NOT_FOUND})
def get_agent_view(agent_id: str) -> tuple[Agent, int]:
    return get_agent(checked_agent_id(agent_id)), 200


@API.route(bp, "/agents/<agent_id>", "DELETE", summary="Remove an agent",
           description="Refused with 409 while a number lists the agent.",
           responses={204: ("removed", None), 404: _AGENT_NOT_FOUND, 409: ("a number lists the agent", None)})
def delete_agent_view(agent_id: str) -> tuple[NoContent, int]:
    delete_agent(checked_agent_id(agent_id))
    return NoContent(), 204

