"""The admin API: support numbers and agents, and pointing a Twilio number at Threadline."""

from __future__ import annotations

from flask import Blueprint
from pydantic import Field, RootModel

from context.schemas import Strict
from core.api import API_PREFIX, require_api_key
from core.openapi import API
from directory.models import VOICE_CHOICES, Agent, AgentConfig, AgentList, Number, NumberConfig, NumberList
from directory.service import DIRECTORY, checked_agent_id, checked_number
from voice.sync import SyncReport, sync_number

bp = Blueprint("admin", __name__, url_prefix=API_PREFIX)
require_api_key(bp, "THREADLINE_ADMIN_KEYS")

_NUMBER_NOT_FOUND = ("no such support number is configured", None)
_AGENT_NOT_FOUND = ("no agent with that id", None)
_API_FORCE = 'Sync again with {"force": true} to detach it.'


class SyncOptions(Strict):
    """How to sync: force detaches the number from a TwiML App or SIP trunk, which keep Twilio off its Voice URL."""

    force: bool = Field(False, description="detach the number from its TwiML App or SIP trunk (the SID is set to "
                                           "empty); without it such a number is refused with 409")


class NoContent(RootModel[None]):
    """An empty answer: with status 204 the server sends no body."""

    root: None = None


@API.route(bp, "/numbers", "GET", summary="List the support numbers",
           responses={200: ("every configured number, by number", NumberList)})
def list_numbers() -> tuple[NumberList, int]:
    return NumberList(numbers=DIRECTORY.get().numbers.all()), 200


@API.route(bp, "/numbers/<number>", "PUT", body=NumberConfig, summary="Configure a support number",
           description="The path number may be in any form with a country code (URL-encode the +); it is stored "
                       "in E.164. Every agent listed must exist. A voice, when given, must speak the language: "
                       + "; ".join(f"{language}: {', '.join(voices)}" for language, voices in VOICE_CHOICES.items())
                       + ".",
           responses={200: ("replaced", Number), 201: ("created", Number)})
def put_number_view(number: str, body: NumberConfig) -> tuple[Number, int]:
    stored, created = DIRECTORY.get().set_number(checked_number(number), body)
    return stored, 201 if created else 200


@API.route(bp, "/numbers/<number>", "GET", summary="Read a support number's configuration",
           responses={200: ("the number", Number), 404: _NUMBER_NOT_FOUND})
def get_number_view(number: str) -> tuple[Number, int]:
    return DIRECTORY.get().number(checked_number(number)), 200


@API.route(bp, "/numbers/<number>", "DELETE", summary="Remove a support number's configuration",
           responses={204: ("removed", None), 404: _NUMBER_NOT_FOUND})
def delete_number_view(number: str) -> tuple[NoContent, int]:
    DIRECTORY.get().remove_number(checked_number(number))
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
    return sync_number(checked_number(number), body.force, _API_FORCE), 200


@API.route(bp, "/agents", "GET", summary="List the agents",
           responses={200: ("every agent, by id", AgentList)})
def list_agents() -> tuple[AgentList, int]:
    return AgentList(agents=DIRECTORY.get().agents.all()), 200


@API.route(bp, "/agents/<agent_id>", "PUT", body=AgentConfig, summary="Create or replace an agent",
           responses={200: ("replaced", Agent), 201: ("created", Agent)})
def put_agent_view(agent_id: str, body: AgentConfig) -> tuple[Agent, int]:
    stored, created = DIRECTORY.get().set_agent(checked_agent_id(agent_id), body)
    return stored, 201 if created else 200


@API.route(bp, "/agents/<agent_id>", "GET", summary="Read an agent",
           responses={200: ("the agent", Agent), 404: _AGENT_NOT_FOUND})
def get_agent_view(agent_id: str) -> tuple[Agent, int]:
    return DIRECTORY.get().agent(checked_agent_id(agent_id)), 200


@API.route(bp, "/agents/<agent_id>", "DELETE", summary="Remove an agent",
           description="Refused with 409 while a number lists the agent.",
           responses={204: ("removed", None), 404: _AGENT_NOT_FOUND, 409: ("a number lists the agent", None)})
def delete_agent_view(agent_id: str) -> tuple[NoContent, int]:
    DIRECTORY.get().remove_agent(checked_agent_id(agent_id))
    return NoContent(), 204

