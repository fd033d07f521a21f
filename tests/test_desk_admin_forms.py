"""The admin forms: numbers and agents edited field by field, read by the directory exactly as the admin API reads
them, each problem shown beside its field with everything typed kept."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from tests.support.admin import ADMIN_KEY, HOSTILE, SUPPORT, admin_desk, fields_of, send
from tests.support.desk import HTML, sign_in, token_of

PAGE = f"/desk/admin/numbers/{SUPPORT}"


@pytest.fixture
def app(make_app: Any) -> Flask:
    return admin_desk(make_app)


def stored(app: Flask) -> dict[str, Any]:
    return app.extensions["threadline.numbers"].get(SUPPORT).model_dump(mode="json", exclude={"updated_at"})


def problem(response: TestResponse, element: str, about: str | None = None) -> str:
    """The problem about (the element's id unless given) shown beside the element, which is marked invalid and
    points at it."""
    page = response.get_data(as_text=True)
    tag = re.search(rf'<(?:input|select)[^>]*\bid="{re.escape(element)}"[^>]*>', page)
    assert tag, f"no element {element}"
    assert 'aria-invalid="true"' in tag.group(0) and f"{about or element}-error" in tag.group(0), tag.group(0)
    return described(response, about or element)


def described(response: TestResponse, element: str) -> str:
    """The text of the problem paragraph for element."""
    match = re.search(rf'<p class="problem" id="{re.escape(element)}-error">(.*?)</p>', response.get_data(as_text=True))
    assert match, f"no problem beside {element}"
    return html.unescape(match.group(1))


def value_of(response: TestResponse, element: str) -> str:
    tag = re.search(rf'<input[^>]*\bid="{re.escape(element)}"[^>]*>', response.get_data(as_text=True))
    assert tag, element
    value = re.search(r'value="([^"]*)"', tag.group(0))
    return html.unescape(value.group(1)) if value else ""


def test_the_form_shows_the_number_in_words_and_saves_back_unchanged(app: Flask, admin: FlaskClient) -> None:
    before = stored(app)
    form = admin.get(PAGE, headers=HTML)
    page = form.get_data(as_text=True)
    assert form.status_code == 200 and "<img src=x" not in page and f'href="{PAGE}/yaml"' in page
    assert (value_of(form, "mon-start-0"), value_of(form, "mon-end-1"), value_of(form, "holiday-0")) == (
        "09:00", "17:00", "2026-12-25")
    for words in ("Monday", "Tuesday", "Sunday", "English (United States)", "French (Canada)", "Joanna",
                  "America / New York", "Sam Lee (sam)", "Calling window"):
        assert words in page, words
    # Every field is labelled: by a label naming its id, or by the label around it.
    for tag in re.findall(r"<(?:input|select)[^>]*>", page):
        element = re.search(r'\bid="([^"]+)"', tag)
        if 'type="hidden"' in tag:
            continue
        assert element and (f'<label for="{element.group(1)}"' in page or re.search(
            rf'<label[^>]*>\s*<input[^>]*id="{element.group(1)}"', page)), tag
    saved = send(admin, PAGE)
    assert (saved.status_code, saved.headers["Location"]) == (303, "/desk/admin/")
    assert stored(app) == before


def test_several_ranges_a_day_and_blank_rows_are_read(app: Flask, admin: FlaskClient) -> None:
    saved = send(admin, PAGE, hours="weekly", **{"tue-start": ["13:00", "", " 08:30 "],
                                                  "tue-end": ["17:30", "", "12:00"],
                                                  "holiday": ["", "2026-07-04", "2026-12-25", ""]})
    assert saved.status_code == 303, described(saved, "tue-row-0")
    number = stored(app)
    assert number["business_hours"]["tue"] == [["08:30", "12:00"], ["13:00", "17:30"]]
    assert number["business_hours"]["mon"] == [["09:00", "12:00"], ["13:00", "17:00"]]
    assert number["holidays"] == ["2026-07-04", "2026-12-25"]
    api = app.test_client().get(f"/api/v1/numbers/{SUPPORT}", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert api.get_json()["business_hours"]["tue"] == [["08:30", "12:00"], ["13:00", "17:30"]]
    again = admin.get(PAGE, headers=HTML)
    assert [value_of(again, f"tue-start-{i}") for i in range(3)] == ["08:30", "13:00", ""]


def test_around_the_clock_and_every_other_field_are_saved(app: Flask, admin: FlaskClient) -> None:
    saved = send(admin, PAGE, hours="always", label="US support", brand="Globex", time_zone="Europe/Paris",
                 language="fr-FR", languages=["en-US", "es-ES"], voice="Polly.Mathieu", agents=[],
                 record_calls="on", survey="on", caller_id="", caller_id_trust="attested", callback_countries="FR, BE",
                 max_attempts="5", retry_minutes="5, 15 60", **{"window-start": "09:00", "window-end": "20:00"})
    assert saved.status_code == 303
    number = stored(app)
    assert number["business_hours"] is None and number["agents"] == [] and number["record_calls"] is True
    assert number["survey"] is True
    assert send(admin, PAGE).status_code == 303 and stored(app)["survey"] is True  # saved again as shown: kept
    assert (number["label"], number["brand"], number["time_zone"], number["language"], number["voice"]) == (
        "US support", "Globex", "Europe/Paris", "fr-FR", "Polly.Mathieu")
    assert (number["languages"], number["caller_id"], number["caller_id_trust"]) == (["en-US", "es-ES"], None,
                                                                                        "attested")
    assert (number["callback_countries"], number["max_attempts"], number["retry_minutes"]) == (
        ["FR", "BE"], 5, [5, 15, 60])
    assert number["calling_window"] == {"start": "09:00", "end": "20:00"}


@pytest.mark.parametrize(("starts", "ends", "element", "words"), [
    (["25:00"], ["17:00"], "tue-start-0", "write a time as hours:minutes from 00:00 to 24:00"),
    (["", "09:00"], ["", "9pm"], "tue-end-1", "not '9pm'"),
    (["18:00"], ["09:00"], "tue-row-0", "range 18:00-09:00 ends before it starts"),
    (["", "09:00"], ["", "09:00"], "tue-row-1", "range 09:00-09:00 ends before it starts"),
    (["09:00", "11:00"], ["12:00", "13:00"], "hours-tue", "ranges overlap at 11:00"),
    (["09:00"], [""], "tue-end-0", "write a time as hours:minutes"),
])
def test_a_wrong_time_is_shown_beside_its_field_with_everything_typed_kept(
        app: Flask, admin: FlaskClient, starts: list[str], ends: list[str], element: str, words: str) -> None:
    before = stored(app)
    response = send(admin, PAGE, label="Typed label", hours="weekly", **{"tue-start": starts, "tue-end": ends})
    assert response.status_code == 422
    shown = described(response, element) if element.startswith("hours-") else problem(
        response, element.replace("row", "start"), element)
    assert words in shown
    assert 'role="alert"' in response.get_data(as_text=True) and f'href="#{element}"' in response.get_data(
        as_text=True)
    assert value_of(response, "label") == "Typed label" and value_of(response, "mon-start-1") == "13:00"
    assert [value_of(response, f"tue-start-{i}") for i in range(len(starts))] == starts
    assert [value_of(response, f"tue-end-{i}") for i in range(len(ends))] == ends
    assert stored(app) == before


@pytest.mark.parametrize(("changes", "element", "words"), [
    ({"holiday": ["", "2026-02-30"]}, "holiday-1", "day value is outside expected range"),
    ({"holiday": ["soon"]}, "holiday-0", "valid date"),
    ({"agents": ["sam", "ghost"]}, "agents", "unknown agent 'ghost'"),
    ({"agents": ["<b>x</b>"]}, "agents", "an agent id is 1 to 64 letters"),
    ({"language": "fr-FR", "voice": "Polly.Joanna"}, "voice",
     "Polly.Joanna does not speak French (France); it is spoken by Polly.Celine"),
    ({"label": ""}, "label", "at least 1 character"),
    ({"time_zone": "Mars/Olympus"}, "time_zone", "unknown time zone 'Mars/Olympus'"),
    ({"caller_id": "12"}, "caller_id", "not"),
    ({"max_attempts": "lots"}, "max_attempts", "valid integer"),
    ({"max_attempts": "11"}, "max_attempts", "less than or equal to 10"),
    ({"retry_minutes": "10, x"}, "retry_minutes", "valid integer"),
    ({"retry_minutes": ""}, "retry_minutes", "at least 1 item"),
    ({"callback_countries": "usa"}, "callback_countries", "'usa' is not a country's two capital letters"),
    ({"window-start": "22:00", "window-end": "08:00"}, "window", "start 22:00 must be before end 08:00"),
    ({"window-start": "8"}, "window-start", "write a time as hours:minutes"),
    ({"caller_id_trust": "sometimes"}, "caller_id_trust", "'any' or 'attested'"),
])
def test_each_problem_is_the_apis_own_words_beside_its_field(app: Flask, admin: FlaskClient,
                                                            changes: dict[str, Any], element: str, words: str) -> None:
    before = stored(app)
    response = send(admin, PAGE, **changes)
    assert response.status_code == 422
    assert words in described(response, element)
    if element not in ("agents", "window", "caller_id_trust"):  # fieldsets are described, their inputs marked
        problem(response, element)
    assert stored(app) == before
    for name, value in changes.items():  # blank rows may follow what was typed
        kept = [typed for typed in fields_of(response).get(name, []) if typed]
        assert kept == [typed for typed in (value if isinstance(value, list) else [value]) if typed] or name in (
            "agents", "caller_id_trust"), name
    if element == "agents":
        assert re.search(r'value="ghost" id="agent-\d+" checked> ghost \(no such agent\)',
                         response.get_data(as_text=True)) or "ghost" not in str(changes)


def test_the_api_and_the_cli_give_the_same_words(app: Flask, admin: FlaskClient) -> None:
    assert send(admin, PAGE, voice="Polly.Salli").status_code == 303
    cli = app.test_cli_runner().invoke(args=["numbers", "set", SUPPORT, "--language", "fr-FR"])
    assert cli.exit_code != 0
    assert "voice: Polly.Salli does not speak French (France); it is spoken by Polly.Celine" in cli.output
    api = app.test_client()
    body = {"label": "US", "brand": "Acme", "time_zone": "America/New_York", "language": "fr-FR",
            "voice": "Polly.Joanna"}
    error = api.put(f"/api/v1/numbers/{SUPPORT}", json=body, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert error.status_code == 422
    assert error.get_json()["error"]["message"] == ("voice: Polly.Joanna does not speak French (France); it is "
                                                    "spoken by Polly.Celine, Polly.Lea, Polly.Mathieu")


def test_several_problems_are_shown_at_once(app: Flask, admin: FlaskClient) -> None:
    response = send(admin, PAGE, label="", max_attempts="0", language="fr-FR", voice="Polly.Joanna",
                    **{"wed-start": ["09:00"], "wed-end": ["25:00"]})
    assert response.status_code == 422
    assert "at least 1 character" in problem(response, "label")
    assert "greater than or equal to 1" in problem(response, "max_attempts")
    assert "hours:minutes" in problem(response, "wed-end-0")
    assert "Polly.Joanna does not speak French (France)" in problem(response, "voice")  # with the others, at once
    summary = response.get_data(as_text=True).split('id="form-error"')[1].split("</div>")[0]
    assert summary.count("<li>") == 4 and 'href="#wed-end-0">Wednesday hours</a>' in summary


def test_an_admin_adds_a_number_through_the_form(app: Flask, admin: FlaskClient) -> None:
    refused = send(admin, "/desk/admin/numbers/new", number="abc", label="New line", brand="Acme",
                   time_zone="America/Chicago", language="es-US", voice="Polly.Amy")
    assert refused.status_code == 422
    assert "not a phone number" in problem(refused, "number")
    assert "Polly.Amy does not speak Spanish (United States)" in problem(refused, "voice")  # said at once, too
    assert value_of(refused, "label") == "New line"
    added = send(admin, "/desk/admin/numbers/new", number="+1 415 555 0300", label="New line", brand="Acme",
                 time_zone="America/Chicago", agents=["sam"], hours="weekly",
                 **{"fri-start": ["10:00"], "fri-end": ["16:00"]})
    assert added.status_code == 303
    number = app.extensions["threadline.numbers"].get("+14155550300")
    assert number.business_hours.fri == [("10:00", "16:00")] and number.business_hours.mon == []
    assert (number.retry_minutes, number.calling_window.start) == ([10, 30, 120], "08:00")  # the defaults shown
    taken = send(admin, "/desk/admin/numbers/new", number=SUPPORT, label="Again", brand="Acme",
                 time_zone="America/Chicago")
    assert taken.status_code == 409 and "already configured" in problem(taken, "number")


def test_an_admin_adds_and_edits_an_agent_through_the_form(app: Flask, admin: FlaskClient) -> None:
    agents = app.extensions["threadline.agents"]
    unreachable = send(admin, "/desk/admin/agents/new", agent_id="lee", name=HOSTILE, phone="", client_identity="")
    page = unreachable.get_data(as_text=True)
    assert unreachable.status_code == 422 and "<img src=x" not in page
    assert "an agent needs a phone or a browser identity" in page and value_of(unreachable, "name") == HOSTILE
    assert 'aria-invalid="true"' in re.search(r'<input id="phone"[^>]*>', page).group(0)
    assert send(admin, "/desk/admin/agents/new", agent_id="lee", name="Lee Park", client_identity="lee",
                status="available").status_code == 303
    lee = agents.get("lee")
    assert (lee.name, lee.phone, lee.client_identity, lee.status, lee.role) == ("Lee Park", None, "lee",
                                                                                "available", "agent")
    assert send(admin, "/desk/admin/agents/lee", phone="+1 415 555 0333", role="admin").status_code == 303
    assert (agents.get("lee").phone, agents.get("lee").role) == ("+14155550333", "admin")
    wrong = send(admin, "/desk/admin/agents/lee", phone="call me", status="busy")
    assert wrong.status_code == 422
    assert "not a phone number" in problem(wrong, "phone") and "available" in problem(wrong, "status")
    assert value_of(wrong, "phone") == "call me" and agents.get("lee").phone == "+14155550333"
    assert send(admin, "/desk/admin/agents/lee", time_zone="Europe/London").status_code == 303
    assert agents.get("lee").time_zone == "Europe/London" and agents.get("lee").phone == "+14155550333"
    nowhere = send(admin, "/desk/admin/agents/lee", time_zone="Mars/Olympus_Mons")
    assert nowhere.status_code == 422 and "time zone" in problem(nowhere, "time_zone")
    assert send(admin, "/desk/admin/agents/lee", time_zone="").status_code == 303  # the first number's zone again
    assert agents.get("lee").time_zone is None
    taken = send(admin, "/desk/admin/agents/new", agent_id="sam", name="Sam", phone="+14155550444")
    assert taken.status_code == 409 and "already exists" in problem(taken, "agent_id")


def test_an_agent_a_number_lists_is_refused_removal_on_its_form(app: Flask, admin: FlaskClient) -> None:
    form = admin.get("/desk/admin/agents/sam", headers=HTML)
    refused = admin.post("/desk/admin/agents/sam/delete", data={"csrf_token": token_of(form)}, headers=HTML)
    assert refused.status_code == 409 and 'id="delete-error"' in refused.get_data(as_text=True)
    assert value_of(refused, "name") == "Sam Lee"


def test_the_forms_need_the_csrf_token_and_an_admin(app: Flask, client: FlaskClient) -> None:
    assert sign_in(client, agent_id="ada").status_code == 303
    fields = fields_of(client.get(PAGE, headers=HTML))
    before = stored(app)
    for token in ([], ["forged"]):
        data = {**fields, "label": ["Changed"], "csrf_token": token}
        assert client.post(PAGE, data=data, headers=HTML).status_code == 400
    assert stored(app) == before
    sam = app.test_client()
    assert sign_in(sam, agent_id="sam").status_code == 303
    token = token_of(sam.get("/desk/", headers=HTML))
    assert sam.post(PAGE, data={**fields, "label": ["Changed"], "csrf_token": [token]},
                    headers=HTML).status_code == 403
    assert sam.post("/desk/admin/agents/sam", data={"name": "Sam", "csrf_token": token},
                    headers=HTML).status_code == 403
    assert stored(app) == before


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
NAMES = ["label", "brand", "time_zone", "language", "voice", "caller_id", "caller_id_trust", "max_attempts",
         "callback_countries", "retry_minutes", "hours", "window-start", "window-end", "tue-start", "tue-end",
         "holiday", "agents", "languages", "record_calls", "number", "unknown"]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(changes=st.dictionaries(st.sampled_from(NAMES), st.lists(TEXT, max_size=4), max_size=8))
def test_no_input_breaks_the_form(app: Flask, admin: FlaskClient, changes: dict[str, list[str]]) -> None:
    response = send(admin, PAGE, **changes)
    assert response.status_code in (303, 422), response.get_data(as_text=True)[-2000:]
    assert "<script>alert" not in response.get_data(as_text=True)
