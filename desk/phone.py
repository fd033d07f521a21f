"""The desk's browser phone: which network it talks to, what the page's CSP lets it reach, and a short-lived Twilio
Voice access token for the signed-in agent's client identity."""

from __future__ import annotations

import time
from typing import Any

from flask import abort, current_app, jsonify, url_for
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant

from core.api import ApiError
from core.config import uses_real_twilio
from core.urls import origin
from desk import bp
from desk.auth import current_agent_id, login_required
from directory.service import DIRECTORY

TOKEN_TTL_SECONDS = 600  # short: the browser asks again before it runs out
# What Twilio's Voice SDK reaches (desk/static/vendor/twilio-voice-sdk/VERSION.md): signalling on
# wss://voice-js.roaming.twilio.com, insights on https://eventgw.twilio.com, ringtones from https://sdk.twilio.com.
TWILIO_SOURCES = {"connect-src": ("wss://*.twilio.com", "https://*.twilio.com"), "media-src": ("https://sdk.twilio.com",)}


def backend() -> str | None:
    """The browser phone's network: "twilio" (Twilio's Voice SDK: a real account and an API key), "carrier" (the
    local carrier named by TWILIO_API_BASE_URL), or None (no browser phone here)."""
    config = current_app.config
    if config.get("TWILIO_API_BASE_URL"):
        return "carrier"
    if uses_real_twilio(config) and config.get("TWILIO_API_KEY_SID") and config.get("TWILIO_API_KEY_SECRET"):
        return "twilio"
    return None


def csp_sources() -> dict[str, tuple[str, ...]]:
    """What the browser phone adds to the desk's CSP: Twilio's hosts only with real Twilio, the carrier's origin with
    the carrier, nothing otherwise."""
    kind = backend()
    if kind == "twilio":
        return TWILIO_SOURCES
    if kind == "carrier":
        return {"connect-src": (origin(current_app.config["TWILIO_API_BASE_URL"]),)}
    return {}


def softphone() -> dict[str, str] | None:
    """The signed-in agent's browser phone, as the page's data attributes; None without a client identity.

    backend is empty when no network is configured for it (the bar says so)."""
    agent = DIRECTORY.get().agents.get(current_agent_id() or "")
    if agent is None or not agent.client_identity:
        return None
    kind = backend()
    if kind == "twilio":
        return {"backend": kind, "token-url": url_for("desk.voice_token")}
    if kind == "carrier":
        carrier = current_app.config["TWILIO_API_BASE_URL"]
        return {"backend": kind, "identity": agent.client_identity, "carrier": carrier}
    return {"backend": ""}


bp.context_processor(lambda: {"softphone": softphone})


def _no_store(response: Any, status: int = 200) -> Any:
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _refused(error: ApiError) -> Any:
    return _no_store(jsonify(error.to_dict()), error.status)


@bp.get("/token")
@login_required
def voice_token() -> Any:
    """A Twilio Voice access token letting the agent's browser take calls as its client_identity."""
    agent = DIRECTORY.get().agents.get(current_agent_id() or "")
    if agent is None:
        abort(403)
    if not agent.client_identity:
        return _refused(ApiError(409, "no_client_identity", "this agent has no client_identity, so it cannot take "
                                 "calls in the browser: an admin sets one", "client_identity"))
    config = current_app.config
    account, key_sid, secret = (config.get("TWILIO_ACCOUNT_SID"), config.get("TWILIO_API_KEY_SID"),
                                config.get("TWILIO_API_KEY_SECRET"))
    if not (account and key_sid and secret):
        return _refused(ApiError(409, "twilio_api_key_not_configured", "the browser phone needs a Twilio API key: set "
                                 "TWILIO_API_KEY_SID, TWILIO_API_KEY_SECRET and TWILIO_ACCOUNT_SID",
                                 "TWILIO_API_KEY_SID"))
    grant = VoiceGrant(incoming_allow=True, outgoing_application_sid=config.get("TWILIO_TWIML_APP_SID") or None)
    now = int(time.time())  # one clock reading, so the token lives exactly TOKEN_TTL_SECONDS
    token = AccessToken(account, key_sid, secret, grants=[grant], identity=agent.client_identity, nbf=now,
                        valid_until=now + TOKEN_TTL_SECONDS)
    return _no_store(jsonify({"token": token.to_jwt(), "identity": agent.client_identity,
                              "expires_in": TOKEN_TTL_SECONDS}))
