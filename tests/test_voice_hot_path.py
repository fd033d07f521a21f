"""A call in is answered from one Redis round trip and the numbers cached in the process: what the caller hears is
what the stores say, the moment an admin changes a number, whatever the threads hold."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from context.schemas import ThreadIn
from directory.models import NumberConfig
from reports.counters import Count
from tests.support.api import thread_body
from tests.support.voice import signed_post
from voice.prompts import prompt
from voice.summary import first_name, last_words, spoken_subject

TOKEN = "hot-path-token"
SUPPORT, CUSTOMER = "+14155550100", "+14155550123"
BASE = "https://support.example.com"
SIDS = (f"CA{n:032x}" for n in itertools.count(1))


@pytest.fixture
def app(make_app: Any) -> Flask:
    app = make_app(TWILIO_AUTH_TOKEN=TOKEN, TWILIO_ACCOUNT_SID="AC" + "0" * 32, PUBLIC_BASE_URL=BASE)
    number(app, brand="Acme")
    return app


def number(app: Flask, **changes: Any) -> None:
    config = {"label": "US", "brand": "Acme", "time_zone": "America/New_York", **changes}
    app.extensions["threadline.numbers"].put(SUPPORT, NumberConfig.model_validate(config), datetime.now(UTC))


def thread(app: Flask, thread_id: str, **changes: Any) -> None:
    app.extensions["threadline.threads"].put(thread_id, ThreadIn.model_validate(thread_body(**changes)))


def call_in(client: FlaskClient, **extra: str) -> tuple[str, list[str]]:
    """A new call from CUSTOMER: its SID and the texts it hears first."""
    form = {"CallSid": next(SIDS), "From": CUSTOMER, "To": SUPPORT, "CallStatus": "ringing", **extra}
    response = signed_post(client, "/voice/incoming", form, base=BASE, token=TOKEN)
    assert response.status_code == 200
    return form["CallSid"], [node.text or "" for node in ET.fromstring(response.data).iter("Say")]


def test_a_number_an_admin_changes_is_heard_so_on_the_very_next_call(app: Flask, client: FlaskClient) -> None:
    assert call_in(client)[1] == ["If the Acme app shows you a six digit call code, enter it now."]
    number(app, brand="Globex", record_calls=True)
    assert call_in(client)[1] == ["This call may be recorded for quality and training.",
                                  "If the Globex app shows you a six digit call code, enter it now."]
    number(app, brand="Globex", business_hours={}, holidays=[])
    assert call_in(client)[1][0] == "Thanks for calling Globex. We are closed right now."
    app.extensions["threadline.numbers"].delete(SUPPORT)
    assert call_in(client)[1] == ["Sorry, this number is not in service. Goodbye."]


MESSAGES = [
    {"id": "m1", "author": "customer", "text": "Reinstalled <b>it</b> & it still crashes",
     "sent_at": "2026-11-22T10:00Z"},
    {"id": "m2", "author": "customer", "text": "\u3000\u2003", "sent_at": "2026-11-22T10:01Z"},  # Unicode spaces only
    {"id": "m3", "author": "customer", "text": "", "sent_at": "2026-11-22T10:02Z",
     "attachments": [{"name": "a.png", "url": "https://files.example.com/a.png", "content_type": "image/png"}]},
    {"id": "m4", "author": "agent", "text": "Noted, we are on it.", "sent_at": "2026-11-22T10:03Z"},
]


@pytest.mark.parametrize("changes", [
    {},
    {"messages": MESSAGES, "subject": "Crash ]]> \"quoted\" <Dial>+19005550000</Dial>"},
    {"messages": MESSAGES[1:], "customer": {"phone": CUSTOMER, "name": "\u00c9lodie \u4e2d\u6587"}},
    {"messages": [], "customer": {"phone": CUSTOMER, "locale": "fr_CA", "name": "   "}},
])
def test_the_greeting_says_what_the_stored_thread_says(app: Flask, client: FlaskClient,
                                                       changes: dict[str, Any]) -> None:
    number(app, language="en-US", languages=["fr-CA"])
    thread(app, "t-1", **changes)
    stored = app.extensions["threadline.threads"].get("t-1")
    name = first_name(stored.customer.name)
    sid, heard = call_in(client)
    assert name is None or name in heard[0]
    assert spoken_subject(stored) in heard[0]
    language = app.extensions["threadline.numbers"].get(SUPPORT).language_for(stored.customer.locale)
    last = last_words(stored)
    assert heard[1:] == ([prompt(language, "last_wrote", message=last)] if last else [])
    record = app.extensions["threadline.calls"].get(sid)
    assert [(s.kind, s.detail) for s in record.steps] == [("matched_caller_id", {"threads": ["t-1"]})]


@pytest.mark.parametrize(("number_brand", "thread_brand", "matches"), [
    ("Acme", "ACME", True), ("Acme", "Globex", False), ("Stra\u00dfe", "STRASSE", True), ("Acme", "\u00c4cme", False),
    ("\u212aelvin", "kelvin", True), ("Acme", None, True),
])
def test_brands_match_in_any_letter_case_as_python_folds_it(app: Flask, client: FlaskClient, number_brand: str,
                                                             thread_brand: str | None, matches: bool) -> None:
    number(app, brand=number_brand)
    thread(app, "t-1", brand=thread_brand)
    thread(app, "t-2", brand="Other", subject="Not this one")
    sid, heard = call_in(client, StirVerstat="TN-Validation-Passed-A")
    assert heard[0].startswith("Hi Jane.") is matches
    step = app.extensions["threadline.calls"].get(sid).steps[0]
    assert (step.kind, step.detail) == (("matched_caller_id", {"threads": ["t-1"], "stir_verstat":
                                                               "TN-Validation-Passed-A"}) if matches else
                                        ("no_caller_id_match", {"stir_verstat": "TN-Validation-Passed-A"}))


def test_several_threads_are_offered_newest_first_and_named_in_the_record(app: Flask, client: FlaskClient) -> None:
    for n in range(1, 5):
        thread(app, f"t-{n}", subject=f"Case {n}", messages=[
            {"id": "m1", "author": "customer", "text": "Hello", "sent_at": f"2026-11-2{n}T10:00:00Z"}])
    sid, heard = call_in(client)
    assert heard[1:4] == ["For Case 4, press 1.", "For Case 3, press 2.", "For Case 2, press 3."]
    assert app.extensions["threadline.calls"].get(sid).steps[0].detail == {"threads": ["t-4", "t-3", "t-2"]}


def calls_in_counted(app: Flask) -> int:
    """Calls in counted for SUPPORT over its last two days (a call near midnight counts on either)."""
    today = datetime.now(ZoneInfo("America/New_York")).date()
    days = app.extensions["threadline.reports"].days(SUPPORT, today, 2)
    return sum(day.get(Count.calls_in.value, 0) for day in days.values())


def closed_calls_counted(client: FlaskClient) -> float:
    text = client.get("/metrics").text
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "threadline_inbound_calls_total" and s.labels.get("outcome") == "closed")


def test_twilios_repeat_of_a_call_in_is_answered_from_what_the_stores_hold_now_and_counted_once(
        app: Flask, client: FlaskClient) -> None:
    # Twilio repeats a request only when it got no answer it could play, so no caller heard the first one.
    thread(app, "t-1", subject="App crashes at login")
    form = {"CallSid": next(SIDS), "From": CUSTOMER, "To": SUPPORT, "CallStatus": "ringing"}
    first = signed_post(client, "/voice/incoming", form, base=BASE, token=TOKEN)
    assert "App crashes at login" in first.text
    thread(app, "t-1", subject="Refund for order A-1009")
    repeat = signed_post(client, "/voice/incoming", form, base=BASE, token=TOKEN,
                         headers={"I-Twilio-Idempotency-Token": "a-second-try"})
    assert repeat.status_code == 200 and "Refund for order A-1009" in repeat.text
    assert len(app.extensions["threadline.calls"].get(form["CallSid"]).steps) == 1
    assert calls_in_counted(app) == 1
    number(app, business_hours={}, holidays=[])  # closed: the repeat's "closed" is counted once too
    closed_before = closed_calls_counted(client)
    form["CallSid"] = next(SIDS)
    answers = {signed_post(client, "/voice/incoming", form, base=BASE, token=TOKEN).text for _ in range(3)}
    assert len(answers) == 1 and "We are closed right now" in answers.pop()
    assert closed_calls_counted(client) == closed_before + 1
    assert calls_in_counted(app) == 2


def test_a_repeat_of_a_call_in_read_the_long_way_gets_the_answer_kept_from_the_first(
        app: Flask, client: FlaskClient) -> None:
    number(app, brand="Stra\u00dfe")  # not ASCII: the threads are read through the stores, the answer kept
    thread(app, "t-1", brand="STRASSE", subject="App crashes at login")
    form = {"CallSid": next(SIDS), "From": CUSTOMER, "To": SUPPORT, "CallStatus": "ringing",
            "StirVerstat": "TN-Validation-Passed-A"}
    first = signed_post(client, "/voice/incoming", form, base=BASE, token=TOKEN)
    assert "App crashes at login" in first.text
    thread(app, "t-1", brand="STRASSE", subject="Refund for order A-1009")
    assert signed_post(client, "/voice/incoming", form, base=BASE, token=TOKEN).text == first.text
    assert len(app.extensions["threadline.calls"].get(form["CallSid"]).steps) == 1
    assert calls_in_counted(app) == 1
