"""The admin API: numbers and agents round trips, admin-only keys, errors naming their field, sync with Twilio."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from carrier.server import CarrierServer
from tests.support.api import API_KEY
from tests.support.processes import free_port
from voice.twilio_client import make_client

ADMIN = {"Authorization": "Bearer admin-key"}
SUPPORT = "+14155550100"
ENCODED = "%2B14155550100"
BASE = "https://support.example.com"


def admin_app(make_app: Any, **overrides: Any) -> Flask:
    """An app with the admin key configured."""
    return make_app(**{"THREADLINE_ADMIN_KEYS": ["admin-key"], **overrides})


def number_body(**changes: Any) -> dict[str, Any]:
    """A complete number configuration with top-level fields replaced by changes."""
    body: dict[str, Any] = {"label": "Main line", "brand": "Acme", "language": "en-US",
                            "time_zone": "America/Los_Angeles",
                            "business_hours": {"mon": [["09:00", "12:00"], ["13:00", "17:00"]]},
                            "agents": [], "record_calls": True}
    body.update(changes)
    return body


SAM = {"name": "Sam Agent", "phone": "+1 415 555 0777", "status": "available"}


@pytest.fixture
def admin(make_app: Any) -> FlaskClient:
    return admin_app(make_app).test_client()


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()["error"]


def test_agents_round_trip(admin):
    created = admin.put("/api/v1/agents/sam", json=SAM, headers=ADMIN)
    assert created.status_code == 201
    assert created.get_json()["id"] == "sam" and created.get_json()["phone"] == "+14155550777"
    replaced = admin.put("/api/v1/agents/sam", json={**SAM, "status": "away"}, headers=ADMIN)
    assert replaced.status_code == 200 and replaced.get_json()["status"] == "away"
    assert admin.get("/api/v1/agents/sam", headers=ADMIN).get_json() == replaced.get_json()
    admin.put("/api/v1/agents/alex", json={"name": "Alex", "client_identity": "alex"}, headers=ADMIN)
    listed = admin.get("/api/v1/agents", headers=ADMIN).get_json()
    assert [a["id"] for a in listed["agents"]] == ["alex", "sam"]

    deleted = admin.delete("/api/v1/agents/alex", headers=ADMIN)
    assert deleted.status_code == 204 and deleted.get_data() == b""
    assert error_of(admin.get("/api/v1/agents/alex", headers=ADMIN), 404)["field"] == "agent_id"
    assert error_of(admin.delete("/api/v1/agents/alex", headers=ADMIN), 404)["field"] == "agent_id"


def test_numbers_round_trip_with_the_number_in_any_form(admin):
    admin.put("/api/v1/agents/sam", json=SAM, headers=ADMIN)
    created = admin.put(f"/api/v1/numbers/{ENCODED}", json=number_body(agents=["sam"]), headers=ADMIN)
    assert created.status_code == 201
    number = created.get_json()
    assert number["number"] == SUPPORT and number["agents"] == ["sam"] and number["caller_id"] is None
    assert number["caller_id_trust"] == "any"
    assert number["updated_at"].endswith("Z") or number["updated_at"].endswith("+00:00")

    replaced = admin.put("/api/v1/numbers/+1 (415) 555-0100", json=number_body(brand="Acme Support"), headers=ADMIN)
    assert replaced.status_code == 200 and replaced.get_json()["brand"] == "Acme Support"
    assert admin.get(f"/api/v1/numbers/{SUPPORT}", headers=ADMIN).get_json() == replaced.get_json()
    assert [n["number"] for n in admin.get("/api/v1/numbers", headers=ADMIN).get_json()["numbers"]] == [SUPPORT]

    deleted = admin.delete(f"/api/v1/numbers/{ENCODED}", headers=ADMIN)
    assert deleted.status_code == 204 and deleted.get_data() == b""
    assert error_of(admin.get(f"/api/v1/numbers/{ENCODED}", headers=ADMIN), 404)["field"] == "number"
    assert error_of(admin.delete(f"/api/v1/numbers/{ENCODED}", headers=ADMIN), 404)["field"] == "number"
    assert admin.get("/api/v1/numbers", headers=ADMIN).get_json() == {"numbers": []}


def test_only_the_admin_key_opens_the_admin_api(make_app):
    client = admin_app(make_app).test_client()
    assert client.get("/api/v1/numbers", headers=ADMIN).status_code == 200
    assert error_of(client.get("/api/v1/numbers"), 401)["field"] == "Authorization"
    platform = {"Authorization": f"Bearer {API_KEY}"}
    assert error_of(client.get("/api/v1/numbers", headers=platform), 401)["message"] == "the API key is not valid"
    assert client.get("/api/v1/threads?phone=%2B14155550123", headers=platform).status_code == 200
    assert client.get("/api/v1/threads?phone=%2B14155550123", headers=ADMIN).status_code == 401

    closed = admin_app(make_app, THREADLINE_ADMIN_KEYS=[]).test_client()
    assert "THREADLINE_ADMIN_KEYS" in error_of(closed.get("/api/v1/agents", headers=ADMIN), 401)["message"]


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"business_hours": {"mon": [["25:00", "26:00"]]}}, "business_hours.mon[0][0]", "hours:minutes"),
    ({"business_hours": {"tue": [["18:00", "09:00"]]}}, "business_hours.tue[0]", "ends before it starts"),
    ({"business_hours": {"wed": [["09:00", "12:00"], ["11:00", "13:00"]]}}, "business_hours.wed", "overlap"),
    ({"time_zone": "Mars/Olympus_Mons"}, "time_zone", "unknown time zone"),
    ({"language": "xx-XX"}, "language", "unsupported language"),
    ({"language": "fr-FR", "voice": "Polly.Joanna"}, "voice", "Polly.Joanna does not speak French (France)"),
    ({"callback_countries": ["usa"]}, "callback_countries[0]", "not a country's two capital letters"),
    ({"calling_window": {"start": "22:00", "end": "08:00"}}, "calling_window", "must be before"),
    ({"agents": ["bob"]}, "agents[0]", "unknown agent 'bob'"),
    ({"agents": ["sam", "bob"]}, "agents[1]", "unknown agent 'bob'"),
    ({"caller_id": "12"}, "caller_id", "not"),
    ({"caller_id_trust": "sometimes"}, "caller_id_trust", "'any' or 'attested'"),
    ({"colour": "red"}, "colour", "unknown field"),
])
def test_invalid_numbers_are_refused_naming_the_field(admin, changes, field, words):
    admin.put("/api/v1/agents/sam", json=SAM, headers=ADMIN)
    error = error_of(admin.put(f"/api/v1/numbers/{ENCODED}", json=number_body(**changes), headers=ADMIN), 422)
    assert error["field"] == field
    assert words in error["message"] and error["message"].startswith(field)
    assert admin.get("/api/v1/numbers", headers=ADMIN).get_json() == {"numbers": []}


def test_invalid_path_values_name_their_field(admin):
    assert error_of(admin.put("/api/v1/numbers/12", json=number_body(), headers=ADMIN), 422)["field"] == "number"
    assert error_of(admin.get("/api/v1/numbers/not-a-number", headers=ADMIN), 422)["field"] == "number"
    assert error_of(admin.put("/api/v1/agents/-sam", json=SAM, headers=ADMIN), 422)["field"] == "agent_id"
    unreachable = error_of(admin.put("/api/v1/agents/sam", json={"name": "Sam"}, headers=ADMIN), 422)
    assert "phone or a browser identity" in unreachable["message"]


def test_an_agent_that_answers_a_number_cannot_be_deleted(admin):
    admin.put("/api/v1/agents/sam", json=SAM, headers=ADMIN)
    admin.put(f"/api/v1/numbers/{ENCODED}", json=number_body(agents=["sam"]), headers=ADMIN)
    error = error_of(admin.delete("/api/v1/agents/sam", headers=ADMIN), 409)
    assert error["code"] == "agent_in_use" and SUPPORT in error["message"]
    assert admin.get("/api/v1/agents/sam", headers=ADMIN).status_code == 200
    admin.put(f"/api/v1/numbers/{ENCODED}", json=number_body(agents=[]), headers=ADMIN)
    assert admin.delete("/api/v1/agents/sam", headers=ADMIN).status_code == 204


def test_the_admin_operations_are_documented(admin):
    doc = admin.get("/api/v1/openapi.json").get_json()
    put = doc["paths"]["/numbers/{number}"]["put"]
    assert put["tags"] == ["admin"] and put["security"] == [{"bearer": []}]
    assert set(doc["paths"]["/numbers/{number}"]) == {"put", "get", "delete"}
    sync = doc["paths"]["/numbers/{number}/sync"]["post"]
    assert "200" in sync["responses"] and "TwiML App" in sync["responses"]["409"]["description"]
    assert sync["responses"]["409"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert sync["requestBody"]["required"] is False
    options = sync["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(doc["components"]["schemas"][options]["properties"]) == {"force"}
    assert set(doc["paths"]["/agents/{agent_id}"]) == {"put", "get", "delete"}
    assert "content" not in doc["paths"]["/agents/{agent_id}"]["delete"]["responses"]["204"]


@pytest.fixture
def carrier() -> Iterator[CarrierServer]:
    with CarrierServer(numbers=(SUPPORT,)) as server:
        yield server


def twilio_app(make_app: Any, carrier: CarrierServer, **overrides: Any) -> FlaskClient:
    """An admin client whose Twilio client talks to the local carrier."""
    config = {"TWILIO_ACCOUNT_SID": carrier.state.account_sid, "TWILIO_AUTH_TOKEN": carrier.state.auth_token,
              "TWILIO_API_BASE_URL": carrier.url, "PUBLIC_BASE_URL": BASE}
    client = admin_app(make_app, **{**config, **overrides}).test_client()
    client.put(f"/api/v1/numbers/{ENCODED}", json=number_body(), headers=ADMIN)
    return client


def test_sync_points_the_twilio_number_at_threadline(make_app, carrier):
    admin = twilio_app(make_app, carrier)
    twilio = make_client(carrier.state.account_sid, carrier.state.auth_token, carrier.url)
    sid = twilio.incoming_phone_numbers.list(phone_number=SUPPORT)[0].sid
    twilio.incoming_phone_numbers(sid).update(voice_url="https://old.example.com/ivr", voice_method="GET")

    synced = admin.post(f"/api/v1/numbers/{ENCODED}/sync", headers=ADMIN)
    assert synced.status_code == 200, synced.get_json()
    assert synced.get_json() == {"number": SUPPORT, "sid": sid, "changes": {
        "voice_url": {"from": "https://old.example.com/ivr", "to": f"{BASE}/voice/incoming"},
        "voice_method": {"from": "GET", "to": "POST"},
        "status_callback": {"from": None, "to": f"{BASE}/voice/status"}}}
    fetched = twilio.incoming_phone_numbers(sid).fetch()
    assert (fetched.voice_url, fetched.voice_method) == (f"{BASE}/voice/incoming", "POST")
    assert (fetched.status_callback, fetched.status_callback_method) == (f"{BASE}/voice/status", "POST")

    again = admin.post(f"/api/v1/numbers/{SUPPORT}/sync", headers=ADMIN)
    assert again.get_json() == {"number": SUPPORT, "sid": sid, "changes": {}}


def test_sync_refusals(make_app, carrier):
    admin = twilio_app(make_app, carrier)
    other = "+14155550199"
    admin.put(f"/api/v1/numbers/{other}", json=number_body(), headers=ADMIN)
    assert "no number" in error_of(admin.post(f"/api/v1/numbers/{other}/sync", headers=ADMIN), 404)["message"]
    unconfigured = error_of(admin.post("/api/v1/numbers/+14155550188/sync", headers=ADMIN), 404)
    assert "configured" in unconfigured["message"]

    no_base = twilio_app(make_app, carrier, PUBLIC_BASE_URL=None)
    assert "PUBLIC_BASE_URL" in error_of(no_base.post(f"/api/v1/numbers/{ENCODED}/sync", headers=ADMIN),
                                         409)["message"]
    wrong_token = twilio_app(make_app, carrier, TWILIO_AUTH_TOKEN="not-the-token")
    error = error_of(wrong_token.post(f"/api/v1/numbers/{ENCODED}/sync", headers=ADMIN), 502)
    assert error["code"] == "twilio_error" and "Authenticate" in error["message"]
    unreachable = twilio_app(make_app, carrier, TWILIO_API_BASE_URL=f"http://127.0.0.1:{free_port()}")
    error = error_of(unreachable.post(f"/api/v1/numbers/{ENCODED}/sync", headers=ADMIN), 502)
    assert error["code"] == "twilio_error" and "cannot reach Twilio" in error["message"]


def test_sync_without_twilio_names_the_settings(admin):
    admin.put(f"/api/v1/numbers/{ENCODED}", json=number_body(), headers=ADMIN)
    error = error_of(admin.post(f"/api/v1/numbers/{ENCODED}/sync", headers=ADMIN), 409)
    assert error["code"] == "twilio_not_configured" and "TWILIO_ACCOUNT_SID" in error["message"]


APP = "AP" + "a1" * 16
TRUNK = "TK" + "b2" * 16
OLD = "https://old.example.com/ivr"


def attach(carrier: CarrierServer, **route: str | None) -> dict[str, Any]:
    """Attach the carrier's number as the Twilio Console would, with an old Voice URL; its record after."""
    response = requests.put(f"{carrier.url}/_carrier/numbers/{SUPPORT}", json={"voice_url": OLD, **route}, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(("route", "words"), [({"voice_application_sid": APP}, f"a TwiML App ({APP})"),
                                              ({"trunk_sid": TRUNK}, f"a SIP trunk ({TRUNK})")])
def test_a_number_on_an_application_or_trunk_is_a_conflict_left_alone(make_app, carrier, route, words):
    admin = twilio_app(make_app, carrier)
    before = attach(carrier, **route)
    for body in ({}, {"json": {}}, {"json": {"force": False}}):
        error = error_of(admin.post(f"/api/v1/numbers/{ENCODED}/sync", headers=ADMIN, **body), 409)
        assert error["code"] == "number_attached"
        assert error["message"] == (f"the Twilio number {SUPPORT} is attached to {words}; Twilio never calls its "
                                    'Voice URL while it is. Sync again with {"force": true} to detach it.')
    twilio = make_client(carrier.state.account_sid, carrier.state.auth_token, carrier.url)
    after = twilio.incoming_phone_numbers(before["sid"]).fetch()
    assert (after.voice_url, after.voice_application_sid, after.trunk_sid, after.status_callback) == (
        OLD, before["voice_application_sid"], before["trunk_sid"], None)


@pytest.mark.parametrize("route", [{"voice_application_sid": APP}, {"trunk_sid": TRUNK}])
def test_force_detaches_the_number_and_points_it_at_threadline(make_app, carrier, route):
    admin = twilio_app(make_app, carrier)
    sid = attach(carrier, **route)["sid"]
    synced = admin.post(f"/api/v1/numbers/{ENCODED}/sync", json={"force": True}, headers=ADMIN)
    assert synced.status_code == 200, synced.get_json()
    [(field, sid_before)] = route.items()
    assert synced.get_json()["changes"] == {
        "voice_url": {"from": OLD, "to": f"{BASE}/voice/incoming"},
        "status_callback": {"from": None, "to": f"{BASE}/voice/status"},
        field: {"from": sid_before, "to": ""}}
    fetched = make_client(carrier.state.account_sid, carrier.state.auth_token, carrier.url).incoming_phone_numbers(
        sid).fetch()
    assert (fetched.voice_application_sid, fetched.trunk_sid) == (None, None)
    assert (fetched.voice_url, fetched.status_callback) == (f"{BASE}/voice/incoming", f"{BASE}/voice/status")
    # Detached, the number is an ordinary one: a plain sync has nothing left to do.
    assert admin.post(f"/api/v1/numbers/{ENCODED}/sync", headers=ADMIN).get_json()["changes"] == {}


def test_the_sync_body_is_checked(make_app, carrier):
    admin = twilio_app(make_app, carrier)
    attach(carrier, voice_application_sid=APP)
    assert error_of(admin.post(f"/api/v1/numbers/{ENCODED}/sync", json={"forced": True}, headers=ADMIN),
                    422)["field"] == "forced"
    assert error_of(admin.post(f"/api/v1/numbers/{ENCODED}/sync", json={"force": [1]}, headers=ADMIN),
                    422)["field"] == "force"
    assert error_of(admin.post(f"/api/v1/numbers/{ENCODED}/sync", data="force", headers=ADMIN),
                    415)["field"] == "Content-Type"
    assert carrier.state.number_by_phone(SUPPORT).voice_application_sid == APP
