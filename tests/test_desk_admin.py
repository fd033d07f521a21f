"""Desk administration: admins edit numbers and agents as YAML through the admin API's checks; nobody else can."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
import requests
import yaml
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from carrier.server import CarrierServer
from tests.support.admin import ADMIN_KEY, HOSTILE, SUPPORT, admin_desk, save
from tests.support.desk import HTML, sign_in, token_of
from voice.twilio_client import make_client


@pytest.fixture
def app(make_app: Any) -> Flask:
    return admin_desk(make_app)


def textarea(response: TestResponse) -> str:
    """The textarea's text as a browser reads it: unescaped, without the newline after the start tag."""
    match = re.search(r"<textarea[^>]*>(.*?)</textarea>", response.get_data(as_text=True), re.DOTALL)
    assert match, response.get_data(as_text=True)
    return html.unescape(match.group(1)).removeprefix("\n")


def stored_number(app: Flask) -> dict[str, Any] | None:
    number = app.extensions["threadline.numbers"].get(SUPPORT)
    return None if number is None else number.model_dump(exclude={"updated_at"})


def test_an_admin_sees_every_number_and_agent_escaped(admin: FlaskClient) -> None:
    response = admin.get("/desk/admin/", headers=HTML)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    page = response.get_data(as_text=True)
    assert f'href="/desk/admin/numbers/{SUPPORT}"' in page
    assert 'href="/desk/admin/agents/ada"' in page and 'href="/desk/admin/agents/sam"' in page
    assert "<h1>Administration</h1>" in page and "Sam Lee" in page and "admin" in page
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page.replace('<script src="/desk/static/desk.js" defer></script>', "")
    assert ' style="' not in page and "<style" not in page


def test_the_edit_form_shows_the_configuration_as_yaml_that_saves_back_unchanged(app: Flask,
                                                                                 admin: FlaskClient) -> None:
    before = stored_number(app)
    form = admin.get(f"/desk/admin/numbers/{SUPPORT}/yaml", headers=HTML)
    assert form.status_code == 200
    page = form.get_data(as_text=True)
    assert '<label for="config">' in page and '<textarea id="config" name="config"' in page
    assert "&lt;/textarea&gt;&lt;img src=x" in page and "<img src=x" not in page  # the label can't end the textarea
    text = textarea(form)
    assert "'+14155550999'" in text and "'17:00'" in text and "'2026-12-25'" in text  # quoted: no int, no date
    assert yaml.safe_load(text)["business_hours"]["mon"] == [["09:00", "12:00"], ["13:00", "17:00"]]
    # Browsers send a textarea's lines with CRLF.
    saved = admin.post(f"/desk/admin/numbers/{SUPPORT}/yaml", data={"csrf_token": token_of(form),
                                                                "config": text.replace("\n", "\r\n")}, headers=HTML)
    assert saved.status_code == 303 and saved.headers["Location"].endswith("/desk/admin/")
    assert stored_number(app) == before
    assert admin.get("/desk/admin/", headers=HTML).get_data(as_text=True).count(f"Saved {SUPPORT}.") == 1


def test_unquoted_numbers_and_times_are_read_as_text(app: Flask, admin: FlaskClient) -> None:
    text = ("label: US support\nbrand: Acme\ntime_zone: America/New_York\nagents: [sam]\n"
            "caller_id: +14155550999\nbusiness_hours:\n  mon: [[09:00, 17:00]]\nholidays: [2026-12-25]\n"
            "max_attempts: 4\nrecord_calls: yes\n")
    assert save(admin, f"/desk/admin/numbers/{SUPPORT}/yaml", config=text).status_code == 303
    number = app.extensions["threadline.numbers"].get(SUPPORT)
    assert (number.label, number.caller_id, number.max_attempts, number.record_calls) == (
        "US support", "+14155550999", 4, True)
    assert number.business_hours.mon == [("09:00", "17:00")] and str(number.holidays[0]) == "2026-12-25"
    assert number.language == "en-US" and number.retry_minutes == [10, 30, 120]  # left out: the defaults


BASE = "label: US\nbrand: Acme\ntime_zone: America/New_York\n"


@pytest.mark.parametrize(("text", "message"), [
    ("label: [unclosed\n", "config: not valid YAML"),
    ("just some words", "config: expected YAML fields"),
    (BASE + "business_hours:\n  mon: [['09:00', '12:00'], ['11:00', '17:00']]\n",
     "business_hours.mon: ranges overlap at 11:00"),
    (BASE + "agents: [sam, ghost]\n", "agents[1]: unknown agent &#39;ghost&#39;"),
    (BASE + "colour: red\n", "colour: unknown field"),
    ("label: US\nbrand: Acme\n", "time_zone: Field required"),
    (BASE + "time_zone: Mars/Olympus\n", "time_zone: unknown time zone"),
])
def test_an_invalid_configuration_is_refused_naming_the_field_and_keeps_the_text(
        app: Flask, admin: FlaskClient, text: str, message: str) -> None:
    before = stored_number(app)
    response = save(admin, f"/desk/admin/numbers/{SUPPORT}/yaml", config=text)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page and 'role="alert"' in page and 'aria-invalid="true"' in page
    assert textarea(response) == text
    assert stored_number(app) == before


def test_an_admin_adds_a_number(app: Flask, admin: FlaskClient) -> None:
    form = admin.get("/desk/admin/numbers/new/yaml", headers=HTML)
    assert form.status_code == 200
    assert '<label for="key">' in form.get_data(as_text=True) and textarea(form) == "label:\nbrand:\ntime_zone:\n"
    added = save(admin, "/desk/admin/numbers/new/yaml", number="+1 415 555 0300", config=BASE + "agents: [sam]\n")
    assert added.status_code == 303
    number = app.extensions["threadline.numbers"].get("+14155550300")
    assert number is not None and number.agents == ["sam"]


@pytest.mark.parametrize(("number", "status", "message"), [
    ("abc", 422, "number: &#39;abc&#39; is not a phone number"),
    ("", 422, "number: a phone number is required"),
    ("+1 (415) 555-0100", 409, f"number: {SUPPORT} is already configured"),
])
def test_a_new_number_is_refused_when_the_number_is_wrong_or_taken(
        app: Flask, admin: FlaskClient, number: str, status: int, message: str) -> None:
    before = stored_number(app)
    response = save(admin, "/desk/admin/numbers/new/yaml", number=number, config=BASE)
    assert response.status_code == status
    page = response.get_data(as_text=True)
    assert message in page and textarea(response) == BASE
    assert re.search(r'<input id="key" name="number"[^>]*aria-invalid="true"', page)
    assert stored_number(app) == before and len(app.extensions["threadline.numbers"].all()) == 1


def test_an_admin_removes_a_number(app: Flask, admin: FlaskClient) -> None:
    form = admin.get(f"/desk/admin/numbers/{SUPPORT}", headers=HTML)
    removed = admin.post(f"/desk/admin/numbers/{SUPPORT}/delete", data={"csrf_token": token_of(form)}, headers=HTML)
    assert removed.status_code == 303 and stored_number(app) is None
    assert admin.get(f"/desk/admin/numbers/{SUPPORT}", headers=HTML).status_code == 404


def test_an_admin_creates_edits_and_deletes_an_agent(app: Flask, admin: FlaskClient) -> None:
    agents = app.extensions["threadline.agents"]
    text = f"name: {HOSTILE!r}\nclient_identity: lee\nphone: +14155550333\n"
    assert save(admin, "/desk/admin/agents/new/yaml", agent_id="lee", config=text).status_code == 303
    lee = agents.get("lee")
    assert (lee.name, lee.phone, lee.client_identity, lee.role) == (HOSTILE, "+14155550333", "lee", "agent")
    form = admin.get("/desk/admin/agents/lee/yaml", headers=HTML)
    assert "<img src=x" not in form.get_data(as_text=True)
    assert yaml.safe_load(textarea(form)) == {"name": HOSTILE, "phone": "+14155550333", "client_identity": "lee",
                                              "status": "offline", "role": "agent", "time_zone": None}
    assert "<img src=x" not in admin.get("/desk/admin/", headers=HTML).get_data(as_text=True)
    assert save(admin, "/desk/admin/agents/lee/yaml", config="name: Lee\nphone: ''\nclient_identity: lee\n"
                ).status_code == 422  # an empty phone is no phone number
    assert agents.get("lee").name == HOSTILE
    removed = admin.post("/desk/admin/agents/lee/delete", data={"csrf_token": token_of(form)}, headers=HTML)
    assert removed.status_code == 303 and agents.get("lee") is None


@pytest.mark.parametrize(("agent_id", "text", "status", "message"), [
    ("sam", "name: Sam\nphone: '+14155550777'\n", 409, "agent_id: agent &#39;sam&#39; already exists"),
    ("bad id!", "name: X\nphone: '+14155550333'\n", 422, "agent_id: an agent id is 1 to 64 letters"),
    ("lee", "name: Lee\n", 422, "an agent needs a phone or a browser identity"),
    ("lee", "name: Lee\nclient_identity: lee\nrole: owner\n", 422, "role: Input should be &#39;agent&#39; or"),
])
def test_a_new_agent_is_refused_naming_the_problem(app: Flask, admin: FlaskClient, agent_id: str, text: str,
                                                   status: int, message: str) -> None:
    response = save(admin, "/desk/admin/agents/new/yaml", agent_id=agent_id, config=text)
    assert response.status_code == status and message in response.get_data(as_text=True)
    assert textarea(response) == text
    assert app.extensions["threadline.agents"].get("lee") is None
    assert app.extensions["threadline.agents"].get("sam").name == "Sam Lee"


def test_an_agent_a_number_lists_is_not_deleted(app: Flask, admin: FlaskClient) -> None:
    form = admin.get("/desk/admin/agents/sam", headers=HTML)
    response = admin.post("/desk/admin/agents/sam/delete", data={"csrf_token": token_of(form)}, headers=HTML)
    assert response.status_code == 409
    assert f"agent &#39;sam&#39; answers {SUPPORT}; remove it from those numbers first" in response.get_data(
        as_text=True)
    assert app.extensions["threadline.agents"].get("sam") is not None


def test_demoting_an_admin_takes_effect_at_once(app: Flask, admin: FlaskClient) -> None:
    text = "name: Ada Admin\nphone: '+14155550701'\nrole: agent\n"
    assert save(admin, "/desk/admin/agents/ada/yaml", config=text).status_code == 303
    assert admin.get("/desk/admin/", headers=HTML).status_code == 403


ADMIN_URLS = ["/desk/admin/", "/desk/admin/numbers/new", f"/desk/admin/numbers/{SUPPORT}", "/desk/admin/agents/new",
              "/desk/admin/agents/sam", "/desk/admin/agents/ada", "/desk/admin/numbers/new/yaml",
              f"/desk/admin/numbers/{SUPPORT}/yaml", "/desk/admin/agents/new/yaml", "/desk/admin/agents/sam/yaml"]
ADMIN_POSTS = [*ADMIN_URLS[1:], f"/desk/admin/numbers/{SUPPORT}/delete", "/desk/admin/agents/sam/delete",
               "/desk/admin/agents/ada/delete", f"/desk/admin/numbers/{SUPPORT}/sync"]
CHANGES = {"number": "+14155550300", "agent_id": "lee", "config": BASE + "name: Lee\nclient_identity: lee\n"}


def everything(app: Flask) -> tuple[Any, ...]:
    return (app.extensions["threadline.numbers"].all(), app.extensions["threadline.agents"].all())


def test_an_agent_who_is_not_an_admin_gets_403_everywhere(app: Flask, client: FlaskClient) -> None:
    sign_in(client, agent_id="sam")
    before = everything(app)
    for path in ADMIN_URLS:
        assert client.get(path, headers=HTML).status_code == 403, path
    token = token_of(client.get("/desk/", headers=HTML))
    for path in ADMIN_POSTS:
        assert client.post(path, data={"csrf_token": token, **CHANGES}, headers=HTML).status_code == 403, path
    assert everything(app) == before


def test_admin_pages_ask_for_sign_in(client: FlaskClient) -> None:
    for path in ADMIN_URLS:
        response = client.get(path, headers=HTML)
        assert response.status_code == 303 and "/desk/login" in response.headers["Location"], path


def test_every_admin_post_needs_the_csrf_token(app: Flask, admin: FlaskClient) -> None:
    before = everything(app)
    for path in ADMIN_POSTS:
        assert admin.post(path, data=CHANGES, headers=HTML).status_code == 400, path
        assert admin.post(path, data={"csrf_token": "forged", **CHANGES}, headers=HTML).status_code == 400, path
    assert everything(app) == before


def test_unknown_numbers_and_agents_are_404(admin: FlaskClient) -> None:
    for path in ("/desk/admin/numbers/+14155550199", "/desk/admin/numbers/not-a-number", "/desk/admin/agents/ghost",
                 "/desk/admin/agents/bad%20id"):
        assert admin.get(path, headers=HTML).status_code == 404, path


def test_the_role_is_set_from_the_cli_and_the_api(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["agents", "set", "sam", "--role", "admin"])
    assert result.exit_code == 0, result.output
    assert app.extensions["threadline.agents"].get("sam").role == "admin"
    api = app.test_client()
    response = api.put("/api/v1/agents/lee", json={"name": "Lee", "client_identity": "lee", "role": "admin"},
                       headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 201 and response.get_json()["role"] == "admin"
    assert app.extensions["threadline.agents"].get("ada").role == "admin"
    assert app.extensions["threadline.agents"].get("lee").role == "admin"


def sync(client: FlaskClient) -> TestResponse:
    """Press "Sync with Twilio" on the number's page."""
    token = token_of(client.get(f"/desk/admin/numbers/{SUPPORT}", headers=HTML))
    return client.post(f"/desk/admin/numbers/{SUPPORT}/sync", data={"csrf_token": token}, headers=HTML)


def test_an_admin_syncs_a_number_and_forces_it_off_a_twiml_app(make_app: Any) -> None:
    app_sid, base = "AP" + "a1" * 16, "https://support.example.com"
    with CarrierServer(numbers=(SUPPORT,)) as carrier:
        sid, token = carrier.state.account_sid, carrier.state.auth_token
        app = admin_desk(make_app, TWILIO_ACCOUNT_SID=sid, TWILIO_AUTH_TOKEN=token, TWILIO_API_BASE_URL=carrier.url,
                         PUBLIC_BASE_URL=base)
        admin = app.test_client()
        assert sign_in(admin, agent_id="ada").status_code == 303
        page = f"/desk/admin/numbers/{SUPPORT}"
        attached = requests.put(f"{carrier.url}/_carrier/numbers/{SUPPORT}", json={"voice_application_sid": app_sid},
                                timeout=5)
        assert attached.status_code == 200, attached.text

        refused = sync(admin)
        text = html.unescape(refused.get_data(as_text=True))
        assert refused.status_code == 409
        assert (f"the Twilio number {SUPPORT} is attached to a TwiML App ({app_sid}); Twilio never calls its Voice "
                "URL while it is. Press “Detach and sync” to detach it and point it at Threadline.") in text
        twilio = make_client(sid, token, carrier.url)
        number = twilio.incoming_phone_numbers.list(phone_number=SUPPORT)[0]
        assert (number.voice_application_sid, number.voice_url) == (app_sid, None)

        force = re.search(r'<form method="post" action="([^"]+)">\s*<input type="hidden" name="csrf_token" '
                          r'value="([^"]+)">\s*<input type="hidden" name="force" value="1">\s*<button[^>]*>Detach '
                          r"and sync</button>", refused.get_data(as_text=True))
        assert force, "the page offers no way to force"
        forced = admin.post(force.group(1), data={"csrf_token": force.group(2), "force": "1"}, headers=HTML)
        assert (forced.status_code, forced.headers["Location"]) == (303, page)
        fetched = twilio.incoming_phone_numbers(number.sid).fetch()
        assert (fetched.voice_application_sid, fetched.voice_url) == (None, f"{base}/voice/incoming")
        shown = html.unescape(admin.get(page, headers=HTML).get_data(as_text=True))
        assert f"Synced {SUPPORT} with Twilio." in shown and f"TwiML App: {app_sid} → none" in shown
        assert f"Voice URL: none → {base}/voice/incoming" in shown

        again = sync(admin)
        assert again.status_code == 303
        assert "nothing changed" in admin.get(page, headers=HTML).get_data(as_text=True)


def test_a_sync_twilio_refuses_is_shown_on_the_page(app: Flask, admin: FlaskClient) -> None:
    refused = sync(admin)
    assert refused.status_code == 409 and "TWILIO_ACCOUNT_SID" in refused.get_data(as_text=True)
    assert "Detach and sync" not in refused.get_data(as_text=True)
