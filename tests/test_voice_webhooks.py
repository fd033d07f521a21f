"""Webhook hygiene: signatures, replays, ordering of status callbacks, failures answered with TwiML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from context.schemas import ThreadIn
from core import keys
from directory.models import AgentConfig, NumberConfig
from tests.support.api import thread_body
from tests.support.voice import not_absolute, signed_post, twiml_urls

TOKEN = "webhook-test-token"
SUPPORT, CUSTOMER = "+14155550100", "+14155550123"
BASE = "https://support.example.com"  # where Twilio reaches Threadline: what it signs


@pytest.fixture
def app(make_app):
    app = make_app(TWILIO_AUTH_TOKEN=TOKEN, TWILIO_ACCOUNT_SID="AC" + "0" * 32, PUBLIC_BASE_URL=BASE)
    now = datetime.now(UTC)
    app.extensions["threadline.agents"].put("sam", AgentConfig(name="Sam", phone="+14155550777",
                                                                status="available"), now)
    config = NumberConfig(label="US", brand="Acme", time_zone="America/New_York", agents=["sam"])
    app.extensions["threadline.numbers"].put(SUPPORT, config, now)
    return app


def signed(client, path: str, form: dict[str, str], *, base: str = BASE, token: str = TOKEN,
           headers: dict[str, str] | None = None):
    return signed_post(client, path, form, base=base, token=token, headers=headers)


def call_form(**extra: str) -> dict[str, str]:
    return {"CallSid": "CA" + "1" * 32, "AccountSid": "AC" + "0" * 32, "From": CUSTOMER, "To": SUPPORT,
            "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01", **extra}


def says(body: bytes) -> list[str]:
    return [node.text or "" for node in ET.fromstring(body).iter("Say")]


def test_a_signed_request_is_answered_with_twiml(client):
    response = signed(client, "/voice/incoming", call_form())
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert says(response.data) == ["If the Acme app shows you a six digit call code, enter it now."]


@pytest.mark.parametrize("headers", [{}, {"X-Twilio-Signature": "forged"}])
def test_unsigned_or_forged_requests_are_refused_before_anything_is_written(client, redis_client, headers):
    response = client.post("/voice/incoming", data=call_form(), headers=headers)
    assert response.status_code == 403
    assert client.application.extensions["threadline.calls"].get("CA" + "1" * 32) is None


def test_a_request_signed_with_another_token_or_for_other_params_is_refused(client):
    assert signed(client, "/voice/incoming", call_form(), token="other-token").status_code == 403
    signature = RequestValidator(TOKEN).compute_signature(f"{BASE}/voice/incoming", call_form())
    tampered = client.post("/voice/incoming", data=call_form(From="+14155550199"),
                           headers={"X-Twilio-Signature": signature})
    assert tampered.status_code == 403


def test_behind_a_proxy_the_public_url_is_what_is_signed(client):
    assert signed(client, "/voice/status", call_form()).status_code == 204
    assert signed(client, "/voice/status", call_form(), base="http://localhost").status_code == 403


def test_without_a_public_url_the_address_the_request_came_to_is_what_is_signed(make_app):
    client = make_app(TWILIO_AUTH_TOKEN=TOKEN).test_client()  # no account: not Twilio itself, e.g. the carrier
    assert signed(client, "/voice/status", call_form(), base="http://localhost").status_code == 204
    assert signed(client, "/voice/status", call_form()).status_code == 403


def test_without_an_auth_token_every_webhook_is_refused(make_app):
    client = make_app(TWILIO_AUTH_TOKEN=None).test_client()
    assert signed(client, "/voice/incoming", call_form(), base="http://localhost").status_code == 403


def test_a_retried_webhook_is_answered_the_same_and_changes_nothing_twice(app, client, redis_client):
    form = call_form()
    first = signed(client, "/voice/incoming", form, headers={"I-Twilio-Idempotency-Token": "tok-1"})
    again = signed(client, "/voice/incoming", form, headers={"I-Twilio-Idempotency-Token": "tok-1"})
    assert first.data == again.data
    record = app.extensions["threadline.calls"].get(form["CallSid"])
    assert [s.kind for s in record.steps] == ["no_caller_id_match"]
    # Without Twilio's token the signed request itself is still the fingerprint.
    signed(client, "/voice/incoming", form)
    assert len(app.extensions["threadline.calls"].get(form["CallSid"]).steps) == 1


def test_signed_replays_with_different_idempotency_tokens_run_the_handler_once(app, client):
    form = call_form()
    answers = {signed(client, "/voice/incoming", form, headers={"I-Twilio-Idempotency-Token": f"tok-{n}"}).data
               for n in range(6)}
    assert len(answers) == 1
    assert [s.kind for s in app.extensions["threadline.calls"].get(form["CallSid"]).steps] == ["no_caller_id_match"]


def test_different_signed_requests_both_run_and_a_reused_token_only_repeats(app, client):
    calls = app.extensions["threadline.calls"]
    first, second, third = (call_form(CallSid=f"CA{n}" + "7" * 31) for n in range(3))
    signed(client, "/voice/incoming", first)
    signed(client, "/voice/incoming", second)
    assert calls.get(first["CallSid"]) is not None and calls.get(second["CallSid"]) is not None
    # The unsigned token can make a request count as a repeat, never as new.
    token = {"I-Twilio-Idempotency-Token": "shared"}
    assert signed(client, "/voice/incoming", first, headers=token).status_code == 200
    assert signed(client, "/voice/incoming", third, headers=token).status_code == 200
    assert calls.get(third["CallSid"]) is None
    assert len(calls.get(first["CallSid"]).steps) == 1


def test_status_callbacks_apply_in_sequence_order(app, client):
    sid = "CA" + "2" * 32
    for sequence, status in ((0, "initiated"), (3, "completed"), (2, "in-progress"), (3, "completed"),
                             (1, "ringing")):
        response = signed(client, "/voice/status", call_form(CallSid=sid, CallStatus=status,
                                                             SequenceNumber=str(sequence), CallDuration="42"))
        assert response.status_code == 204
    record = app.extensions["threadline.calls"].get(sid)
    assert (record.status, record.duration) == ("completed", 42)
    assert [s.detail["status"] for s in record.steps] == ["initiated", "completed"]


def test_a_failure_inside_answers_an_apology_in_valid_twiml(app, client, redis_client, caplog):
    redis_client.set(keys.number(SUPPORT), "{not json")  # a record the handler can't read
    response = signed(client, "/voice/incoming", call_form())
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert says(response.data) == ["Sorry, something went wrong on our side. Please try again later. Goodbye."]
    assert ET.fromstring(response.data).find("Hangup") is not None
    assert "CA" + "1" * 32 in caplog.text


def test_query_strings_are_part_of_what_is_signed(app, client):
    path = "/voice/general?" + urlencode({"number": SUPPORT})
    response = signed(client, path, call_form())
    assert response.status_code == 200
    assert ET.fromstring(response.data).find("Dial/Number").text == "+14155550777"


@pytest.mark.parametrize(("accepted", "bridged", "talked"), [
    (True, None, True), (False, None, False),  # DialBridged not sent: the agent's key decides
    (False, "true", True), (True, "false", False),  # sent: it decides
])
def test_a_dial_that_ended_completed_talked_only_if_the_agent_took_the_call(client, accepted, bridged, talked):
    sid = "CA" + "1" * 32
    assert signed(client, "/voice/incoming", call_form()).status_code == 200
    query = "?" + urlencode({"agent": "sam", "number": SUPPORT})
    accept = signed(client, f"/voice/whisper-accept{query}",
                    call_form(CallSid="CA" + "2" * 32, ParentCallSid=sid, Digits="1" if accepted else "9"))
    assert accept.status_code == 200
    form = call_form(CallStatus="in-progress", DialCallStatus="completed", DialCallSid="CA" + "2" * 32,
                     DialCallDuration="30", **({"DialBridged": bridged} if bridged else {}))
    spoken = says(signed(client, f"/voice/dial-done{query}", form).data)
    assert any("message" in text for text in spoken) != talked, spoken


def test_every_url_in_the_answers_is_absolute_under_the_public_url(app, client):
    app.extensions["threadline.threads"].put("t-1", ThreadIn.model_validate(thread_body()))
    query, agent_leg = "?" + urlencode({"thread": "t-1", "agent": "sam", "number": SUPPORT}), "CA" + "2" * 32
    answers = [signed(client, "/voice/incoming", call_form()),  # the greeting: Gather, then Redirect
               signed(client, "/voice/code?attempt=1", call_form()),  # asks for a code
               signed(client, "/voice/general?" + urlencode({"number": SUPPORT}), call_form()),  # Dial, Number url
               signed(client, f"/voice/whisper{query}", call_form(CallSid=agent_leg, ParentCallSid="CA" + "1" * 32)),
               signed(client, f"/voice/dial-done{query}", call_form(DialCallStatus="no-answer"))]  # Record
    assert [a.status_code for a in answers] == [200] * len(answers)
    urls = [url for answer in answers for url in twiml_urls(answer.data)]
    assert {url.partition("?")[0].removeprefix(f"{BASE}/voice/") for url in urls} == {
        "confirm", "code", "general", "dial-done", "agent-ringing", "whisper", "whisper-accept", "voicemail"}
    assert [url for answer in answers for url in not_absolute(answer.data, BASE)] == []


@pytest.mark.parametrize(("message", "spoken"), [
    ("The app closes as soon as I log in", "Your last message: The app closes as soon as I log in."),
    ("Why does it crash?", "Your last message: Why does it crash?"),
    ("   ", None)])
def test_the_greeting_reaches_its_choices_first_and_ends_each_sentence(app, client, message, spoken):
    body = thread_body(subject="App crashes at login.", messages=[
        {"id": "m1", "author": "customer", "text": message, "sent_at": "2026-11-22T10:00:00Z"}])
    app.extensions["threadline.threads"].put("t-1", ThreadIn.model_validate(body))
    gather = ET.fromstring(signed(client, "/voice/incoming", call_form()).data).find("Gather")
    said = [node.text for node in gather.iter("Say")]
    # The subject's own full stop does not end the question, and the keys come before the customer's words.
    assert said[0] == "Hi Jane. Is this about App crashes at login? Press 1 or say yes, 2 or say no."
    assert said[1:] == ([spoken] if spoken else [])
    assert len(said[0].split()) <= 20  # about six seconds of speech before the caller hears every choice


def answers_twiml(response) -> str:
    """The TwiML text of a webhook answer that is not the apology for a failure inside."""
    assert response.status_code == 200 and response.mimetype == "text/xml", response.data
    ET.fromstring(response.data)
    text = response.get_data(as_text=True)
    assert "something went wrong" not in text
    return text


@pytest.mark.parametrize("path, form", [
    ("/voice/callback/slot?cb=cb-1&attempt=%C2%B2&slots=1900000000", {"Digits": "1"}),
    ("/voice/callback/slot?cb=cb-1&attempt=1&slots=%C2%B2,99999999999999999", {"Digits": "²"}),
    ("/voice/callback/answer?cb=cb-1&attempt=%C2%B2&claim=x", {}),
    ("/voice/code?attempt=%C2%B2", {}),
    ("/voice/choose?threads=t-1", {"Digits": "²"}),
])
def test_a_superscript_digit_in_a_numeric_parameter_still_gets_valid_twiml(app, client, path, form):
    answers_twiml(signed(client, path, call_form(**form)))


def test_a_call_duration_that_is_not_a_number_is_logged_and_the_history_still_reads(app, client, auth, caplog):
    assert client.put("/api/v1/threads/t-1", json=thread_body(), headers=auth).status_code == 201
    sid, calls = "CA" + "3" * 32, app.extensions["threadline.calls"]
    for path in ("/voice/status", "/voice/callback/status?cb=cb-1&attempt=1"):
        response = signed(client, path, call_form(CallSid=sid, CallStatus="completed", SequenceNumber="5",
                                                  CallDuration="abc"))
        assert response.status_code in (200, 204)
    assert "CallDuration 'abc'" in caplog.text
    calls.link(sid, "t-1")
    other = "CA" + "4" * 32  # a record kept before durations were checked
    calls.open(other, "inbound", SUPPORT, CUSTOMER)
    app.extensions["threadline.redis"].hset(keys.call(other), "duration", "abc")
    calls.link(other, "t-1")
    history = client.get("/api/v1/threads/t-1/calls", headers=auth)
    assert history.status_code == 200, history.get_data(as_text=True)
    assert [(c["sid"], c["duration"]) for c in history.get_json()["calls"]] == [(other, None), (sid, None)]
