"""The desk's browser phone: a short-lived Twilio Voice access token for the signed-in agent's client identity."""

from __future__ import annotations

import time
from typing import Any

from flask import abort, current_app, jsonify
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant

from core.api import ApiError
from desk import bp
from desk.auth import current_agent_id, login_required
from directory.service import DIRECTORY

TOKEN_TTL_SECONDS = 600  # short: the browser asks again before it runs out


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
