"""The browser phone's access token: who it names, what it grants, how long it lives, and when it is refused."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient

from directory.models import AgentConfig
from tests.support.desk import sign_in, with_password

ACCOUNT, KEY_SID, SECRET, APP_SID = "AC" + "1" * 32, "SK" + "2" * 32, "s" * 32, "AP" + "3" * 32
TWILIO = {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_API_KEY_SID": KEY_SID, "TWILIO_API_KEY_SECRET": SECRET,
          "TWILIO_TWIML_APP_SID": APP_SID, "PUBLIC_BASE_URL": "https://support.example.com"}
JSON = {"Accept": "application/json"}


def with_agents(app: Flask) -> Flask:
    now = datetime.now(UTC)
    agents = app.extensions["threadline.agents"]
    agents.put("sam", AgentConfig(name="Sam Lee", client_identity="sam.browser", status="available"), now)
    agents.put("kim", AgentConfig(name="Kim Ode", phone="+14155550778"), now)
    for agent in ("sam", "kim"):
        with_password(app, agent)
    return app


@pytest.fixture
def app(make_app: Any) -> Flask:
    return with_agents(make_app(SECRET_KEY="test-secret", **TWILIO))


def claims(token: str, secret: str = SECRET) -> dict[str, Any]:
    return jwt.decode(token, secret, algorithms=["HS256"])


def test_the_token_lets_the_agents_browser_take_calls_for_ten_minutes(client: FlaskClient) -> None:
    sign_in(client)
    before = int(time.time())
    response = client.get("/desk/token", headers=JSON)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["identity"] == "sam.browser" and body["expires_in"] == 600
    payload = claims(body["token"])
    assert payload["sub"] == ACCOUNT and payload["iss"] == KEY_SID
    assert payload["grants"]["identity"] == "sam.browser"
    assert payload["grants"]["voice"]["incoming"]["allow"] is True
    assert payload["grants"]["voice"]["outgoing"]["application_sid"] == APP_SID
    # Twilio's AccessToken sets no iat: nbf is when it was issued, so the lifetime is exp - nbf.
    assert payload["exp"] - payload["nbf"] == 600
    assert before <= payload["nbf"] <= int(time.time())
    assert jwt.get_unverified_header(body["token"])["cty"] == "twilio-fpa;v=1"
    with pytest.raises(jwt.InvalidSignatureError):
        claims(body["token"], "t" * 32)


def test_without_a_twiml_app_the_token_only_takes_calls(make_app: Any) -> None:
    app = with_agents(make_app(SECRET_KEY="test-secret", **{**TWILIO, "TWILIO_TWIML_APP_SID": None}))
    client = app.test_client()
    sign_in(client)
    grants = claims(client.get("/desk/token", headers=JSON).get_json()["token"])["grants"]
    assert grants["voice"] == {"incoming": {"allow": True}}


def test_an_agent_without_a_client_identity_gets_409(client: FlaskClient) -> None:
    sign_in(client, agent_id="kim")
    response = client.get("/desk/token", headers=JSON)
    assert response.status_code == 409 and response.headers["Cache-Control"] == "no-store"
    error = response.get_json()["error"]
    assert error["field"] == "client_identity" and "client_identity" in error["message"]
    assert "token" not in response.get_json()


@pytest.mark.parametrize("missing", ["TWILIO_API_KEY_SID", "TWILIO_API_KEY_SECRET", "TWILIO_ACCOUNT_SID"])
def test_without_an_api_key_the_token_is_refused_naming_the_setting(make_app: Any, missing: str) -> None:
    app = with_agents(make_app(SECRET_KEY="test-secret", **{**TWILIO, missing: None}))
    client = app.test_client()
    sign_in(client)
    response = client.get("/desk/token", headers=JSON)
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["field"] == "TWILIO_API_KEY_SID" and "TWILIO_API_KEY_SID" in error["message"]


def test_no_token_without_signing_in(client: FlaskClient) -> None:
    response = client.get("/desk/token", headers=JSON)
    assert response.status_code == 401 and "token" not in response.get_json()


def test_a_removed_agent_gets_no_token(app: Flask, client: FlaskClient) -> None:
    sign_in(client)
    app.extensions["threadline.agents"].delete("sam")
    assert client.get("/desk/token", headers=JSON).status_code == 401


def policy(response: Any) -> dict[str, list[str]]:
    """The response's CSP, directive by directive."""
    directives = (d.split() for d in response.headers["Content-Security-Policy"].split(";"))
    return {name: sources for name, *sources in directives}


def test_with_real_twilio_the_page_loads_twilios_sdk_and_its_csp_reaches_twilio(client: FlaskClient) -> None:
    sign_in(client)
    home = client.get("/desk/")
    page = home.get_data(as_text=True)
    assert 'data-backend="twilio"' in page and 'data-token-url="/desk/token"' in page
    assert '<script src="/desk/static/vendor/twilio-voice-sdk/twilio.min.js" defer>' in page
    assert "phone-twilio.js" in page and "phone-carrier.js" not in page and "data-carrier" not in page
    csp = policy(home)
    assert csp["connect-src"] == ["'self'", "wss://*.twilio.com", "https://*.twilio.com"]
    assert csp["media-src"] == ["'self'", "https://sdk.twilio.com"]
    assert csp["script-src"] == ["'self'"] and csp["default-src"] == ["'self'"]  # still no inline script
    sdk = client.get("/desk/static/vendor/twilio-voice-sdk/twilio.min.js")
    assert sdk.status_code == 200 and "javascript" in sdk.mimetype
    assert b"Twilio.Device=Twilio.Device||Voice.Device" in sdk.data
    sdk.close()


def test_an_agent_without_a_client_identity_has_no_browser_phone(client: FlaskClient) -> None:
    sign_in(client, agent_id="kim")
    page = client.get("/desk/").get_data(as_text=True)
    assert 'id="softphone"' not in page and "twilio.min.js" not in page


@pytest.mark.parametrize("missing", ["TWILIO_API_KEY_SID", "TWILIO_ACCOUNT_SID"])
def test_without_real_credentials_no_page_reaches_twilio(make_app: Any, missing: str) -> None:
    app = with_agents(make_app(SECRET_KEY="test-secret", **{**TWILIO, missing: None}))
    client = app.test_client()
    for response in (client.get("/desk/login"), sign_in(client), client.get("/desk/")):
        assert not any("twilio" in source for sources in policy(response).values() for source in sources)
    page = client.get("/desk/").get_data(as_text=True)
    assert "twilio.min.js" not in page and "data-backend" not in page
    assert "Calls to you can't be answered in this page" in page


def test_with_the_local_carrier_the_page_reaches_the_carrier_alone(make_app: Any) -> None:
    carrier = "http://127.0.0.1:8700"
    app = with_agents(make_app(SECRET_KEY="test-secret", **TWILIO, TWILIO_API_BASE_URL=carrier))
    client = app.test_client()
    sign_in(client)
    home = client.get("/desk/")
    page = home.get_data(as_text=True)
    assert 'data-backend="carrier"' in page and f'data-carrier="{carrier}"' in page
    assert 'data-identity="sam.browser"' in page and "twilio.min.js" not in page
    assert policy(home)["connect-src"] == ["'self'", carrier] and policy(home)["media-src"] == ["'self'"]
