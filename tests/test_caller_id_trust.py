"""Caller ID is a hint, not a key: brands scope matches, StirVerstat gates context, confirmed calls grant access."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from directory.models import NumberConfig
from tests.support.api import thread_body
from tests.support.carrier import AGENT, CUSTOMER, OUTLASTS_AGENT, heard, wait_until
from tests.support.desk import HTML, sign_in, with_password
from tests.support.voice import GREETING, Line

GLOBEX, KIM = "+14155550200", "+14155550779"
SECRETS = ("Jane", "App crashes", "The app closes")  # the customer's name, subject and message
CODE_PROMPT = "If the Acme app shows you a six digit call code, enter it now."


@pytest.fixture
def two_brands(line: Line) -> Line:
    """The line's Acme number (Sam, Lee) and a Globex number worked by Kim alone, both on the carrier."""
    number = line.carrier.state.add_number(GLOBEX)
    number.voice_url, number.status_callback = f"{line.url}/voice/incoming", f"{line.url}/voice/status"
    line.agent("kim", name="Kim Ode", phone=KIM, status="available")
    config = NumberConfig(label="Globex Support", brand="Globex", time_zone="America/New_York", agents=["kim"])
    line.app.extensions["threadline.numbers"].put(GLOBEX, config, datetime.now(UTC))
    return line


def desk_for(line: Line, agent_id: str) -> FlaskClient:
    """A desk session of the agent, on the app the carrier calls."""
    with_password(line.app, agent_id)
    client = line.app.test_client()
    assert sign_in(client, agent_id=agent_id).headers["Location"] == "/desk/"
    return client


def said(day: int) -> list[dict[str, str]]:
    return [{"id": "m1", "author": "customer", "text": "The app closes as soon as I log in",
             "sent_at": f"2030-01-0{day}T10:00:00Z"}]


def names_nothing(texts: list[str]) -> bool:
    return not any(secret in text for text in texts for secret in SECRETS)


def test_a_call_to_another_brands_number_names_nothing_and_opens_nothing(two_brands: Line) -> None:
    line = two_brands
    line.thread("t-1", brand="Acme")
    line.script(CUSTOMER, hangup_after=400)  # enters no code: the general line
    line.script(KIM, keys=["1"], hangup_after=5)
    sid = line.call_in(CUSTOMER, to=GLOBEX)
    call = line.finished(sid)

    assert heard(call)[0] == "If the Globex app shows you a six digit call code, enter it now."
    assert "Connecting you to the next available person at Globex." in heard(call)
    assert names_nothing(heard(call))
    assert heard(call["legs"][0]) == ["Globex support call. Press 1 to accept."]
    assert line.history(sid).thread_id is None
    assert desk_for(line, "kim").get("/desk/threads/t-1", headers=HTML).status_code == 404
    # The same customer on the thread's own brand is greeted as before (letter case does not matter).
    line.thread("t-1", brand="ACME")
    line.script(CUSTOMER, hangup_after=1)
    assert heard(line.finished(line.call_in(CUSTOMER)))[0] == GREETING


def test_a_call_code_opens_only_a_conversation_of_the_dialled_brand(two_brands: Line) -> None:
    line = two_brands
    line.thread("t-1", brand="Acme", customer={"name": "Jane Doe", "phone": "+14155550999"})
    auth = {"Authorization": "Bearer test-key-0123456789"}
    code = line.app.test_client().post("/api/v1/threads/t-1/call-code", headers=auth).get_json()["code"]
    line.script(CUSTOMER, keys=[code], hangup_after=400)
    line.script(KIM, keys=["1"], hangup_after=5)
    sid = line.call_in(CUSTOMER, to=GLOBEX)
    call = line.finished(sid)

    assert "Sorry, that code did not work." in heard(call)
    assert names_nothing(heard(call)) and names_nothing(heard(call["legs"][0]))
    record = line.history(sid)
    assert record.thread_id is None
    assert [(s.kind, s.detail) for s in record.steps if s.kind == "entered_code"] == [
        ("entered_code", {"valid": False})]
    assert desk_for(line, "kim").get("/desk/threads/t-1", headers=HTML).status_code == 404


def test_a_thread_without_brand_matches_any_number(two_brands: Line) -> None:
    line = two_brands
    line.thread("t-1")
    line.script(CUSTOMER, hangup_after=1)
    call = line.finished(line.call_in(CUSTOMER, to=GLOBEX))
    assert heard(call)[0] == GREETING.replace("Acme", "Globex")
    assert line.app.test_client().get("/api/v1/threads/t-1", headers={
        "Authorization": "Bearer test-key-0123456789"}).get_json()["brand"] is None


def test_matches_of_the_dialled_brand_are_found_behind_newer_threads_of_others(two_brands: Line) -> None:
    line = two_brands
    line.thread("globex-1", brand="Globex", subject="Invoice missing", messages=said(1))
    for day in (2, 3, 4, 5):
        line.thread(f"acme-{day}", brand="Acme", messages=said(day))
    line.script(CUSTOMER, hangup_after=1)
    call = line.finished(line.call_in(CUSTOMER, to=GLOBEX))
    assert heard(call)[0].startswith("Hi Jane. Is this about Invoice missing?")
    ids = line.app.extensions["threadline.threads"].open_thread_ids_of_brand
    assert ids(CUSTOMER, "acme", 3) == ["acme-5", "acme-4", "acme-3"]
    assert ids(CUSTOMER, "globex", 3) == ["globex-1"]


@pytest.mark.parametrize(("verstat", "trusted"), [
    ("TN-Validation-Failed-A", False), (None, False), ("TN-Validation-Passed-B", False),
    ("No-TN-Validation", False), ("TN-Validation-Passed-A", True)])
def test_an_attested_number_greets_by_name_only_a_caller_id_verified_at_level_a(
        line: Line, verstat: str | None, trusted: bool) -> None:
    line.number(caller_id_trust="attested")
    line.thread("t-1")
    line.script(CUSTOMER, hangup_after=400, **({"stir_verstat": verstat} if verstat else {}))
    line.script(AGENT, keys=["1"], hangup_after=5)
    sid = line.call_in(CUSTOMER)
    call = line.finished(sid)
    record = line.history(sid)
    first = record.steps[0]
    if trusted:
        assert heard(call)[0] == GREETING
        assert (first.kind, first.detail) == ("matched_caller_id", {"threads": ["t-1"], "stir_verstat": verstat})
        return
    assert heard(call)[:2] == ["Thanks for calling Acme.", CODE_PROMPT]
    assert "Connecting you to the next available person at Acme." in heard(call)
    assert names_nothing(heard(call)) and names_nothing(heard(call["legs"][0]))
    assert (first.kind, first.detail) == ("caller_id_not_verified", {"stir_verstat": verstat, "trust": "attested"})
    assert record.thread_id is None


def test_a_number_that_trusts_any_caller_id_greets_whatever_the_verification(line: Line) -> None:
    line.thread("t-1")
    line.script(CUSTOMER, hangup_after=1, stir_verstat="TN-Validation-Failed-A")
    assert heard(line.finished(line.call_in(CUSTOMER)))[0] == GREETING


def test_an_unverified_caller_still_reaches_their_thread_with_the_call_code(line: Line, auth: dict[str, str]) -> None:
    line.number(caller_id_trust="attested")
    line.thread("t-1")
    code = line.app.test_client().post("/api/v1/threads/t-1/call-code", headers=auth).get_json()["code"]
    line.script(CUSTOMER, keys=[code], stir_verstat="TN-Validation-Failed-A")
    line.script(AGENT, keys=["1"], hangup_after=5)
    sid = line.call_in(CUSTOMER)
    call = line.finished(sid)
    assert heard(call)[:3] == ["Thanks for calling Acme.", CODE_PROMPT,
                               "Thanks. Connecting you to someone who can see your conversation."]
    assert line.history(sid).thread_id == "t-1"


def test_caller_id_alone_grants_no_desk_access_a_confirmed_call_does(line: Line) -> None:
    line.thread("t-1")
    line.script(CUSTOMER, hangup_after=2)  # hangs up during the greeting
    sid = line.call_in(CUSTOMER)
    assert heard(line.finished(sid))[0] == GREETING
    assert line.history(sid).thread_id is None
    desk = desk_for(line, "sam")
    assert desk.get("/desk/threads/t-1", headers=HTML).status_code == 404

    line.script(CUSTOMER, keys=["1"], hangup_after=OUTLASTS_AGENT)
    line.script(AGENT, keys=["1"], hangup_after=5)
    confirmed = line.call_in(CUSTOMER)
    line.finished(confirmed)
    assert line.history(confirmed).thread_id == "t-1"
    assert desk.get("/desk/threads/t-1", headers=HTML).status_code == 200


def test_a_closed_numbers_voicemail_goes_into_the_callers_thread_without_opening_it(line: Line) -> None:
    line.number(business_hours={})
    line.thread("t-1")
    line.script(CUSTOMER, record_seconds=3)
    sid = line.call_in(CUSTOMER)
    call = line.finished(sid)
    assert names_nothing(heard(call))
    message = wait_until(lambda: (m := line.app.extensions["threadline.threads"].get("t-1").messages[-1])
                         .name == "Voicemail" and m)
    assert "not confirmed" in message.text
    assert line.history(sid).thread_id is None
    assert desk_for(line, "sam").get("/desk/threads/t-1", headers=HTML).status_code == 404


def test_an_unverified_caller_to_a_closed_attested_number_leaves_a_voicemail_in_no_thread(line: Line) -> None:
    line.number(business_hours={}, caller_id_trust="attested")
    line.thread("t-1")
    line.script(CUSTOMER, record_seconds=3)
    sid = line.call_in(CUSTOMER)
    line.finished(sid)
    record = wait_until(lambda: (r := line.history(sid)) and r.recording_url and r)
    assert record.steps[0].kind == "closed" and record.steps[0].detail == {"stir_verstat": None, "trust": "attested"}
    assert line.app.extensions["threadline.threads"].get("t-1").messages[-1].name != "Voicemail"


@pytest.mark.parametrize(("changes", "field"), [
    ({"brand": ""}, "brand"), ({"brand": "x" * 61}, "brand"), ({"brand": 7}, "brand")])
def test_a_bad_thread_brand_is_refused_naming_the_field(client: FlaskClient, auth: dict[str, str],
                                                        changes: dict[str, Any], field: str) -> None:
    response = client.put("/api/v1/threads/t-1", json=thread_body(**changes), headers=auth)
    assert response.status_code == 422 and response.get_json()["error"]["field"] == field


def test_a_thread_keeps_and_returns_its_brand(client: FlaskClient, auth: dict[str, str]) -> None:
    assert client.put("/api/v1/threads/t-1", json=thread_body(brand="Acme"), headers=auth).status_code == 201
    assert client.get("/api/v1/threads/t-1", headers=auth).get_json()["brand"] == "Acme"
    listed = client.get("/api/v1/threads?phone=%2B14155550123", headers=auth).get_json()["threads"]
    assert listed[0]["brand"] == "Acme"
    schema = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert any("brand" in s.get("properties", {}) for s in schema.values())
    assert any("caller_id_trust" in s.get("properties", {}) for s in schema.values())
