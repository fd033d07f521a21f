"""A call in's first webhook answered ahead of Flask: word for word what the Flask route answers, counted and logged as
it would be, and every request the lane cannot finish handed on to Flask with its claim, never claimed twice."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask, request_started
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from twilio.request_validator import RequestValidator
from werkzeug.test import Client

from context.schemas import ThreadIn
from core.redis_server import EmbeddedRedis
from directory.models import NumberConfig
from tests.support.api import thread_body
from tests.support.outage import redis_away
from tests.support.suite_log import lines_of

TOKEN = "fast-lane-token"
SUPPORT, CUSTOMER, STRANGER = "+14155550100", "+14155550123", "+14155550999"
BASE = "https://support.example.com"
SIDS = (f"CA{n:032x}" for n in itertools.count(1))


def make(make_app: Any, **config: Any) -> Flask:
    app = make_app(TWILIO_AUTH_TOKEN=TOKEN, TWILIO_ACCOUNT_SID="AC" + "0" * 32, PUBLIC_BASE_URL=BASE, **config)
    number(app)
    return app


@pytest.fixture
def app(make_app: Any) -> Flask:
    return make(make_app)


def number(app: Flask, **changes: Any) -> None:
    config = {"label": "US", "brand": "Acme", "time_zone": "America/New_York", **changes}
    app.extensions["threadline.numbers"].put(SUPPORT, NumberConfig.model_validate(config), datetime.now(UTC))


def thread(app: Flask, thread_id: str, **changes: Any) -> None:
    app.extensions["threadline.threads"].put(thread_id, ThreadIn.model_validate(thread_body(**changes)))


def signed(form: dict[str, str], path: str = "/voice/incoming") -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(f"{BASE}{path}", form)}


def call(caller: str = CUSTOMER, to: str = SUPPORT, **extra: str) -> dict[str, str]:
    return {"CallSid": next(SIDS), "From": caller, "To": to, "CallStatus": "ringing", "Direction": "inbound", **extra}


@contextmanager
def dispatches(app: Flask) -> Iterator[list[str]]:
    """The paths Flask dispatched meanwhile (its request_started signal: sent for every request it handles)."""
    seen: list[str] = []

    def started(sender: Flask, **extra: Any) -> None:
        from flask import request
        seen.append(request.path)

    with request_started.connected_to(started, app):
        yield seen


def flask_only(app: Flask) -> Client:
    """A client of the app without its lane: the Flask route, the reference."""
    return Client(app.wsgi_app.next)  # type: ignore[attr-defined]


def same_answer(lane: Any, reference: Any) -> None:
    assert (lane.status_code, lane.get_data(as_text=True)) == (reference.status_code, reference.get_data(as_text=True))
    for header in ("Content-Type", "Content-Length"):
        assert lane.headers.get(header) == reference.headers.get(header), header
    assert lane.headers["X-Request-Id"] and reference.headers["X-Request-Id"]


SCENARIOS: dict[str, tuple[dict[str, Any], dict[str, str], str]] = {
    # name: (the number's changes, the call's changes, what the caller hears first)
    "one thread": ({}, {}, "Hi Jane. Is this about App crashes at login?"),
    "several threads": ({}, {}, "Hi Jane. Which conversation are you calling about?"),
    "no thread": ({}, {"caller": STRANGER}, "If the Acme app shows you a six digit call code, enter it now."),
    "caller ID not attested": ({"caller_id_trust": "attested"}, {"StirVerstat": "TN-Validation-Failed"},
                               "If the Acme app shows you a six digit call code, enter it now."),
    "records its calls": ({"record_calls": True}, {}, "This call may be recorded for quality and training."),
    "closed": ({"business_hours": {}, "holidays": []}, {}, "Thanks for calling Acme. We are closed right now."),
    "a number not served": ({}, {"to": "+14155550188"}, "Sorry, this number is not in service. Goodbye."),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_call_in_is_answered_ahead_of_flask_word_for_word_as_flask_answers_it(app: Flask, client: FlaskClient,
                                                                             scenario: str) -> None:
    changes, call_changes, first_words = SCENARIOS[scenario]
    number(app, **changes)
    thread(app, "t-1")
    if scenario == "several threads":
        thread(app, "t-2", subject="Refund for order A-1009")
    with dispatches(app) as seen:
        lane = client.post("/voice/incoming", data=(form := call(**call_changes)), headers=signed(form))
    assert seen == [] and lane.status_code == 200 and first_words in lane.get_data(as_text=True)
    with dispatches(app) as seen:
        reference = flask_only(app).post("/voice/incoming", data=(form := call(**call_changes)), headers=signed(form))
    assert seen == ["/voice/incoming"]
    same_answer(lane, reference)


def webhook_requests(client: FlaskClient) -> float:
    text = client.get("/metrics").text
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "threadline_webhook_requests_total" and s.labels == {"endpoint": "/voice/incoming",
                                                                                 "status": "200"})


def test_the_lane_counts_logs_and_echoes_ids_as_flask_does(app: Flask, client: FlaskClient,
                                                          captured: io.StringIO) -> None:
    before = webhook_requests(client)
    form = call(to="+14155550188")  # a number not served: the one call in that logs a line
    with dispatches(app) as seen:
        answer = client.post("/voice/incoming", data=form, headers={**signed(form), "X-Request-Id": "proxy-id-7"})
    assert seen == [] and answer.headers["X-Request-Id"] == "proxy-id-7"
    assert webhook_requests(client) == before + 1
    [line] = [line for line in lines_of(captured) if "a number Threadline does not serve" in str(line["message"])]
    assert (line["request_id"], line["call_sid"]) == ("proxy-id-7", form["CallSid"])
    made_up = client.post("/voice/incoming", data=(form := call()), headers=signed(form))
    assert len(made_up.headers["X-Request-Id"]) == 16


QUERY = "/voice/incoming?number=%2B14155550100"
NOT_LANES: dict[str, Any] = {
    # name: how to send one such request through a client, given a new call's form
    "a wrong signature": lambda c, form: c.post("/voice/incoming", data=form, headers={"X-Twilio-Signature": "x"}),
    "a query": lambda c, form: c.post(QUERY, data=form, headers=signed(form, QUERY)),
    "not a form": lambda c, form: c.post("/voice/incoming", json=form, headers=signed({})),
    "a body that is not UTF-8": lambda c, form: c.post("/voice/incoming", data=b"CallSid=CA\xff\xfe",
                                                       content_type="application/x-www-form-urlencoded",
                                                       headers=signed({"CallSid": "CA\ufffd\ufffd"})),
}


@pytest.mark.parametrize("case", NOT_LANES)
def test_what_the_lane_does_not_answer_goes_on_to_flask_and_is_answered_as_flask_alone_would(
        app: Flask, client: FlaskClient, case: str) -> None:
    thread(app, "t-1")
    with dispatches(app) as seen:
        answer = NOT_LANES[case](client, call())
    assert seen == ["/voice/incoming"]
    same_answer(answer, NOT_LANES[case](flask_only(app), call()))


def test_a_claim_the_lane_made_is_the_one_flask_answers_by(app: Flask, client: FlaskClient) -> None:
    number(app, brand="Stra\u00dfe")  # not ASCII: the lane claims, Flask reads the threads the long way
    thread(app, "t-1", brand="STRASSE")
    form = call(StirVerstat="TN-Validation-Passed-A")
    with dispatches(app) as seen:
        first = client.post("/voice/incoming", data=form, headers=signed(form))
    # Claimed twice, Flask would have waited out its own claim and apologised.
    assert seen == ["/voice/incoming"] and "Hi Jane. Is this about App crashes at login?" in first.text
    with dispatches(app) as seen:
        repeat = client.post("/voice/incoming", data=form, headers=signed(form))
    assert seen == ["/voice/incoming"] and repeat.text == first.text
    assert len(app.extensions["threadline.calls"].get(form["CallSid"]).steps) == 1


def test_while_redis_is_away_flask_apologises_once_for_the_lane(make_app: Any, server: EmbeddedRedis,
                                                              captured: io.StringIO) -> None:
    app = make(make_app, REDIS_URL=server.url, REDIS_TIMEOUT_SECONDS=0.5)
    client = app.test_client()
    form = call()
    with redis_away(server), dispatches(app) as seen:
        answer = client.post("/voice/incoming", data=form, headers=signed(form))
    assert seen == ["/voice/incoming"]
    assert answer.status_code == 200 and "Sorry, something went wrong on our side." in answer.text
    assert len([line for line in lines_of(captured) if form["CallSid"] in str(line["message"])]) == 1
