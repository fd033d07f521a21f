"""The desk's pages and event stream over HTTP: scoping, escaping, CSP, catch-up."""

from __future__ import annotations

import re
import signal
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from desk.live import stream
from desk.sessions import DeskSessions
from directory.models import AgentConfig, NumberConfig
from tests.support.api import API_KEY, thread_body
from tests.support.desk import HTML, sign_in, token_of, with_password
from voice.screenpop import publish

SUPPORT, OTHER = "+14155550100", "+14155550200"
HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'


@pytest.fixture
def app(make_app: Any) -> Flask:
    app = make_app(SECRET_KEY="test-secret")
    now = datetime.now(UTC)
    agents, numbers = app.extensions["threadline.agents"], app.extensions["threadline.numbers"]
    agents.put("sam", AgentConfig(name="Sam Lee", phone="+14155550777", status="available"), now)
    agents.put("kim", AgentConfig(name="Kim Ode", phone="+14155550778", status="available"), now)
    numbers.put(SUPPORT, NumberConfig(label="US", brand="Acme", time_zone="America/New_York", agents=["sam"],
                                      calling_window={"start": "00:00", "end": "24:00"}), now)
    numbers.put(OTHER, NumberConfig(label="UK", brand="Acme", time_zone="Europe/London", agents=["kim"]), now)
    for agent in ("sam", "kim"):
        with_password(app, agent)
    api = app.test_client()
    auth = {"Authorization": f"Bearer {API_KEY}"}
    body = thread_body(subject=f"Crash {HOSTILE}", metadata={"plan": "javascript:alert(1)", "note": HOSTILE})
    body["messages"][0]["text"] = HOSTILE
    assert api.put("/api/v1/threads/t-1", json=body, headers=auth).status_code == 201
    # The thread meets the US number through a callback: Sam works it, Kim doesn't.
    assert api.post("/api/v1/threads/t-1/callbacks", json={"number": SUPPORT, "when": "in 3 days"},
                    headers=auth).status_code == 201
    return app


def test_the_desk_asks_for_sign_in_first(client):
    response = client.get("/desk/", headers=HTML)
    assert response.status_code == 303 and "/desk/login" in response.headers["Location"]


def test_home_shows_status_and_upcoming_callbacks_and_changes_status_with_csrf(app, client):
    sign_in(client)
    home = client.get("/desk/", headers=HTML)
    assert home.status_code == 200
    page = home.get_data(as_text=True)
    assert "Upcoming callbacks" in page and "t-1" in page
    assert "default-src 'self'" in home.headers["Content-Security-Policy"]
    assert home.headers["Cache-Control"] == "no-store"
    assert client.post("/desk/status", data={"status": "away"}, headers=HTML).status_code == 400  # no token
    changed = client.post("/desk/status", data={"status": "away", "csrf_token": token_of(home)}, headers=HTML)
    assert changed.status_code == 302
    assert app.extensions["threadline.agents"].get("sam").status == "away"


def test_home_lists_recent_calls_with_times_in_words(redis_client, client):
    pop = publish(redis_client, "sam", "CA1", "CA1a", "t-1")
    sign_in(client)
    page = client.get("/desk/", headers=HTML).get_data(as_text=True)
    local = pop.at.astimezone(ZoneInfo("America/New_York"))  # Sam works the New York number: his times are its
    assert f"Today {local.hour % 12 or 12}:{local.minute:02d} {local:%p}</time> —" in page
    assert pop.at.isoformat()[:19] not in re.sub(r"<[^>]*>", "", page)  # no machine timestamp in front of an agent


def test_a_thread_is_shown_escaped_to_an_agent_of_its_number(client):
    sign_in(client)
    response = client.get("/desk/threads/t-1", headers=HTML)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<script>window.pwned" not in page and "<img src=x" not in page
    assert "&lt;script&gt;window.pwned=2&lt;/script&gt;" in page
    assert 'href="javascript:' not in page
    assert "NullPointerException in LoginViewController" in page and "crash.png" in page


def test_desk_pages_with_customer_data_are_never_stored_but_static_assets_may_be(client):
    sign_in(client)
    for path in ("/desk/threads/t-1", "/desk/threads/t-1/panel"):
        response = client.get(path, headers=HTML)
        assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "no-store" not in client.get("/desk/static/desk.css").headers.get("Cache-Control", "")


def test_an_agent_cannot_read_another_numbers_thread_by_changing_the_url(client):
    sign_in(client, agent_id="kim")
    for path in ("/desk/threads/t-1", "/desk/threads/t-1/panel", "/desk/threads/no-such-thread"):
        assert client.get(path, headers=HTML).status_code == 404


def test_the_event_stream_catches_up_then_goes_live_without_repeats(app, redis_client):
    first = publish(redis_client, "sam", "CA1", "CA1a", "t-1")
    second = publish(redis_client, "sam", "CA2", "CA2a", "t-1")
    frames = stream(redis_client, "sam", first.id)
    caught_up = next(frames)
    assert caught_up.startswith(f"id: {second.id}\nevent: screen_pop\ndata: ") and '"call_sid":"CA2"' in caught_up
    assert next(frames) == ": connected\n\n"
    third = publish(redis_client, "sam", "CA3", "CA3a", "t-1")
    live = next(frames)
    assert live.startswith(f"id: {third.id}\n") and '"call_sid":"CA3"' in live
    frames.close()


def test_an_open_event_stream_ends_when_the_session_does(client, redis_client):
    sign_in(client)
    response = client.get("/desk/events", headers={"Accept": "text/event-stream"}, buffered=False)
    frames = iter(response.response)
    assert b": connected" in next(frames)
    DeskSessions(redis_client).end_all("sam")  # what signing out, a new password or removing the agent do
    def kept_going(*_: Any) -> None:
        raise AssertionError("the stream kept going after the session ended")

    signal.signal(signal.SIGALRM, kept_going)
    signal.alarm(10)  # the stream must end by itself within a second or so
    try:
        rest = list(frames)
    finally:
        signal.alarm(0)
    assert not any(b"screen_pop" in frame for frame in rest)


def test_the_event_stream_needs_a_signed_in_agent(client):
    response = client.get("/desk/events", headers={"Accept": "text/event-stream"})
    assert response.status_code == 401


def test_a_disposition_goes_back_into_the_thread(app, client):
    sign_in(client)
    token = token_of(client.get("/desk/threads/t-1", headers=HTML))
    assert client.post("/desk/threads/t-1/disposition", data={"disposition": "resolved"},
                       headers=HTML).status_code == 400  # no CSRF token
    assert client.post("/desk/threads/t-1/disposition", data={"disposition": "maybe", "csrf_token": token},
                       headers=HTML).status_code == 400
    saved = client.post("/desk/threads/t-1/disposition", headers=HTML,
                        data={"disposition": "follow-up", "notes": "Sending logs to QA", "csrf_token": token})
    assert saved.status_code == 302
    listed = app.test_client().get("/api/v1/threads/t-1/events",
                                   headers={"Authorization": f"Bearer {API_KEY}"}).get_json()["events"]
    assert listed[0]["type"] == "call.disposition"
    assert listed[0]["data"] == {"disposition": "follow-up", "notes": "Sending logs to QA", "agent_id": "sam",
                                 "call_sid": None}
    assert listed[0]["message"] == "Thanks for talking with us. We'll follow up here with what we find."


def test_call_now_turns_the_pending_callback_into_an_agent_first_call_for_me(app, client):
    sign_in(client)
    token = token_of(client.get("/desk/threads/t-1", headers=HTML))
    response = client.post("/desk/threads/t-1/call-now", data={"csrf_token": token}, headers=HTML)
    assert response.status_code == 302
    callback = app.extensions["threadline.callbacks"].live_for_thread("t-1")
    assert (callback.mode, callback.agent_id) == ("agent_first", "sam")
    assert (datetime.now(UTC) - callback.scheduled_for).total_seconds() < 5
    assert app.extensions["threadline.queue"].count == 1  # the dial job is waiting for a worker


@pytest.mark.parametrize("headers, query, name", [
    ({"Last-Event-ID": "abc"}, "", "Last-Event-ID"), ({"Last-Event-ID": "1-2-3"}, "", "Last-Event-ID"),
    ({"Last-Event-ID": "²"}, "", "Last-Event-ID"), ({"Last-Event-ID": "9" * 30}, "", "Last-Event-ID"),
    ({}, "?after=x", "after"), ({}, "?after=1-", "after")])
def test_a_malformed_last_event_id_is_400_naming_it(client, headers, query, name):
    assert sign_in(client).status_code == 303
    response = client.get(f"/desk/events{query}", headers={"Accept": "text/event-stream", **headers})
    assert response.status_code == 400 and name in response.get_data(as_text=True)


def test_a_call_without_a_conversation_shows_only_to_agents_of_the_number_it_reached(app, client):
    app.extensions["threadline.calls"].open("CA-stranger", "inbound", SUPPORT, "+14155550999", "no_caller_id_match")
    sign_in(client)
    page = client.get("/desk/calls/CA-stranger/panel", headers=HTML)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "No conversation found for this call" in text and "+1 415-555-0999" in text
    assert "called in, number not recognised, still on the phone" in text
    kim = app.test_client()
    sign_in(kim, agent_id="kim")
    assert kim.get("/desk/calls/CA-stranger/panel", headers=HTML).status_code == 404
    assert kim.get("/desk/calls/CA-nothing/panel", headers=HTML).status_code == 404
