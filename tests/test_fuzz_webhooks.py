"""Fuzzing every Twilio webhook: signed requests with arbitrary parameters never get a 5xx or unparseable TwiML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callbacks import dialer
from callbacks.lifecycle import claim_token
from callbacks.schemas import State
from tests.support.callbacks import ask, callback
from tests.support.carrier import AGENT, CUSTOMER, SUPPORT
from tests.support.voice import Line, signed_post

# Every POST under /voice/ (test_every_voice_webhook_is_fuzzed keeps this list whole).
WEBHOOKS = [
    "/voice/incoming", "/voice/confirm", "/voice/choose", "/voice/code", "/voice/general", "/voice/dial-done",
    "/voice/voicemail", "/voice/agent-ringing", "/voice/whisper", "/voice/whisper-accept", "/voice/status",
    "/voice/recording", "/voice/survey", "/voice/survey-comment",
    "/voice/callback/answer", "/voice/callback/no-choice", "/voice/callback/choice", "/voice/callback/slot",
    "/voice/callback/agent", "/voice/callback/agent-go", "/voice/callback/greet", "/voice/callback/customer-done",
    "/voice/callback/status",
]
# Status callbacks: Twilio acts on nothing in their answer, so an empty body or a refusal (4xx) is as good as
# TwiML; every other webhook's answer is what the caller hears next, so it must be 200 with TwiML.
STATUS_CALLBACKS = {"/voice/status", "/voice/callback/status", "/voice/recording", "/voice/agent-ringing"}
EXAMPLES = 60

FORM_NAMES = [
    "CallSid", "AccountSid", "From", "To", "Caller", "Called", "CallStatus", "Direction", "ApiVersion", "Digits",
    "SpeechResult", "Confidence", "AnsweredBy", "MachineDetectionDuration", "CallDuration", "Duration",
    "DialCallStatus", "DialCallDuration", "DialCallSid", "DialBridged", "ParentCallSid", "SequenceNumber",
    "Timestamp", "RecordingUrl", "RecordingSid", "RecordingDuration", "RecordingStatus", "ErrorCode",
    "SipResponseCode", "StirVerstat", "CallerName", "FromCountry", "ForwardedFrom",
]
QUERY_NAMES = ["cb", "attempt", "claim", "agent", "thread", "threads", "number", "slots", "code"]
# Odd values where a number, a phone, a sid or a choice is expected: what broke handlers before, and its kin.
ODD = ["", " ", "²", "١٢", "½", "abc", "-1", "0", "1e9", "1.5", "99999999999999999999", "NaN", "+", "+1",
       "+1900555010", "+19005550100", "client:sam", "sip:a@b", "\x00", "<Say>hi</Say>", "]]>", "&amp;", "%s",
       "{}", "null", "true", "*", "#", "1#", "9" * 40, "x" * 5000]


def real_values(cb: Any, inbound_sid: str) -> dict[str, list[str]]:
    """Values of this line's records, so that requests reach past the lookups."""
    return {"CallSid": [inbound_sid, cb.attempts[0].call_sid or "", "CA" + "0" * 32],
            "From": [CUSTOMER, SUPPORT, AGENT], "To": [SUPPORT, CUSTOMER, AGENT],
            "CallStatus": ["ringing", "in-progress", "completed", "busy", "no-answer", "failed", "canceled"],
            "DialCallStatus": ["completed", "answered", "busy", "no-answer", "failed", "canceled"],
            "AnsweredBy": ["human", "machine_start", "machine_end_beep", "fax", "unknown"],
            "Digits": ["1", "2", "3", "9", "123456", "hangup", "timeout"],
            "cb": [cb.id], "attempt": ["1"], "claim": [claim_token(cb.attempts[0])],
            "agent": ["sam", "lee", "nobody"], "thread": ["t-1", "t-2"], "threads": ["t-1,t-2", "t-1"],
            "number": [SUPPORT], "slots": [str(int(datetime.now(UTC).timestamp()) + 3600)],
            "RecordingSid": ["RE" + "a" * 32], "RecordingStatus": ["completed", "absent", "failed"],
            "RecordingUrl": ["https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"],
            "RecordingDuration": ["12"], "CallDuration": ["61"], "SequenceNumber": ["0", "3", "5", "8", "13", "21"]}


def values(real: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(real or [""]), st.sampled_from(ODD), st.text(max_size=40))


def params(names: list[str], real: dict[str, list[str]]) -> st.SearchStrategy[dict[str, str]]:
    """Known names with real, odd or arbitrary values, and now and then a name nobody expects; or a genuine set
    (every known name with a real value), as it is or with a few changes, so that deeper branches are reached."""
    known = st.sampled_from(names).flatmap(lambda name: st.tuples(st.just(name), values(real.get(name, []))))
    stray = st.tuples(st.text(min_size=1, max_size=12), st.text(max_size=20))
    def changes(most: int) -> st.SearchStrategy[dict[str, str]]:
        return st.lists(st.one_of(known, known, stray), max_size=most).map(dict)

    genuine = st.fixed_dictionaries({name: st.sampled_from(real[name]) for name in names if name in real})
    mutated = st.tuples(genuine, changes(3)).map(lambda both: {**both[0], **both[1]})
    return st.one_of(changes(12), mutated, genuine)


@pytest.fixture
def fuzzed(cb_line: Line) -> tuple[Line, dict[str, list[str]]]:
    """A line with a thread, an inbound call on record and a callback whose first attempt is ringing."""
    cb_line.thread("t-2", subject="Refund for order 1182")
    cb_line.script(CUSTOMER, answer="manual")  # the callback's call rings on while the webhooks are fuzzed
    body = ask(cb_line).get_json()
    with cb_line.app.app_context():
        assert dialer.dial_attempt(body["id"], 1, datetime.now(UTC)).startswith("dialled")
    real = real_values(callback(cb_line, body["id"]), cb_line.call_in(CUSTOMER))
    # The customer picks up, as Twilio would tell it: the callback is in the call, its choices can be fuzzed.
    query = urlencode({"cb": body["id"], "attempt": 1, "claim": real["claim"][0]})
    answered = signed_post(cb_line.app.test_client(), f"/voice/callback/answer?{query}",
                           {"CallSid": real["CallSid"][1], "AnsweredBy": "human", "To": CUSTOMER, "From": SUPPORT},
                           base=cb_line.app.config["PUBLIC_BASE_URL"], token=cb_line.app.config["TWILIO_AUTH_TOKEN"])
    assert callback(cb_line, body["id"]).state == State.in_call, answered.get_data(as_text=True)
    return cb_line, real


def check_answer(path: str, response: Any) -> None:
    body = response.get_data()
    assert response.status_code < 500, (path, response.status_code, body[:300])
    if path in STATUS_CALLBACKS and not body:
        return
    if path not in STATUS_CALLBACKS:
        assert response.status_code == 200, (path, response.status_code, body[:300])
    assert response.mimetype == "text/xml", (path, response.status_code, body[:300])
    assert ET.fromstring(body).tag == "Response", body[:300]


def test_every_voice_webhook_is_fuzzed(app):
    posted = {rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/voice/") and
              "POST" in (rule.methods or ())}
    assert posted == set(WEBHOOKS)


@pytest.mark.parametrize("path", WEBHOOKS)
def test_signed_webhooks_with_arbitrary_parameters_get_valid_twiml(fuzzed, path):
    line, real = fuzzed
    client = line.app.test_client()
    base, token = line.app.config["PUBLIC_BASE_URL"], line.app.config["TWILIO_AUTH_TOKEN"]

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(form=params(FORM_NAMES, real), query=params(QUERY_NAMES, real))
    def post(form: dict[str, str], query: dict[str, str]) -> None:
        url = f"{path}?{urlencode(query)}" if query else path
        check_answer(path, signed_post(client, url, form, base=base, token=token))

    post()
