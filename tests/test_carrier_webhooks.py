"""The carrier's requests to an app as Twilio makes them: status callbacks only where asked, cookies per call,
plain-text and audio answers, retries with one idempotency token, relative URLs after an HTTP redirect."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask, Response, redirect, request
from twilio.twiml.voice_response import Dial, VoiceResponse

from carrier.server import CarrierServer
from carrier.webhooks import WebhookClient
from tests.support.carrier import AGENT, CUSTOMER, SUPPORT, Served, finished, heard, script, wait_until
from tests.support.fidelity import speak

OTHER = "+14155550124"
MP3 = bytes([0xFF, 0xFB, 0x18, 0xC4]) + bytes(140)


@dataclass
class Seen:
    path: str
    form: dict[str, str]
    cookie: str | None
    token: str | None


@dataclass
class HookApp:
    """An app of the test's own: every request it sees, with its cookie and idempotency token."""

    seen: list[Seen] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)  # path -> how many 503s it answers before a 200
    url: str = ""

    def build(self) -> Flask:
        app = Flask("hooks")

        def twiml(response: VoiceResponse) -> Response:
            return Response(str(response), mimetype="text/xml")

        @app.before_request
        def _seen() -> Response | None:
            self.seen.append(Seen(request.path, request.form.to_dict(), request.cookies.get("who"),
                                  request.headers.get("I-Twilio-Idempotency-Token")))
            if self.failures.get(request.path, 0) > 0:
                self.failures[request.path] -= 1
                return Response("try again", status=503)
            return None

        def dialling(kind: str, target: str, **noun: str) -> Response:
            response = VoiceResponse()
            dial = Dial(action="/after", timeout=10)
            getattr(dial, kind)(target, **noun)
            response.append(dial)
            return twiml(response)

        @app.post("/dial")
        def dial() -> Response:
            return dialling("number", AGENT)

        @app.post("/dial-watched")
        def dial_watched() -> Response:
            return dialling("number", AGENT, status_callback="/agent-status",
                            status_callback_event="initiated answered completed")

        @app.post("/dial-client")
        def dial_client() -> Response:  # no statusCallbackEvent: <Client>'s default is none
            return dialling("client", "alice", status_callback="/agent-status")

        @app.post("/after")
        def after() -> Response:
            return speak(hang_up=True)

        @app.route("/agent-status", methods=["POST"])
        @app.route("/status", methods=["POST"])
        def status() -> Response:
            return Response(status=204)

        @app.post("/session")
        def session() -> Response:
            response = VoiceResponse()
            response.say("Hello.")
            response.redirect("/session/next")
            answer = twiml(response)
            if request.cookies.get("who") is None:
                answer.set_cookie("who", request.form["To"])
            return answer

        @app.post("/session/next")
        def session_next() -> Response:
            return speak(f"You are {request.cookies.get('who')}.")

        @app.post("/text")
        def text() -> Response:
            return Response("Thanks for calling Acme. We are closed.", mimetype="text/plain")

        @app.post("/audio/<kind>")
        def audio(kind: str) -> Response:
            return Response(MP3, mimetype=f"audio/{kind}")

        @app.post("/json")
        def json_answer() -> Response:
            return Response('{"say": "hi"}', mimetype="application/json")

        @app.post("/moved")
        def moved() -> Any:
            return redirect("/menu/start", code=307)

        @app.post("/menu/start")
        def menu_start() -> Response:
            response = VoiceResponse()
            response.say("Moved here.")
            response.redirect("next")  # relative: against the document's own (final) URL
            return twiml(response)

        @app.post("/menu/next")
        def menu_next() -> Response:
            return speak("Next step.")

        @app.post("/flaky")
        def flaky() -> Response:
            return speak("Got through.")

        return app

    def to(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]


@pytest.fixture
def hooks(carrier: CarrierServer) -> Iterator[HookApp]:
    app = HookApp()
    served = Served(app.build())
    app.url = served.url
    yield app
    served.stop()


def place(twilio: Any, hooks: HookApp, path: str, to: str = CUSTOMER, **kwargs: Any) -> str:
    return twilio.calls.create(to=to, from_=SUPPORT, url=f"{hooks.url}{path}", **kwargs).sid


# --- 1: status callbacks only where asked ---------------------------------------------------------------------

def test_a_dialled_leg_without_a_status_callback_sends_none(carrier, twilio, hooks):
    script(carrier, AGENT, hangup_after=5)
    call = finished(carrier, place(twilio, hooks, "/dial"))
    assert call["legs"][0]["status"] == "completed"
    assert [seen.path for seen in hooks.seen] == ["/dial", "/after"]
    assert not [seen for seen in hooks.seen if "CallbackSource" in seen.form]


def test_a_dialled_leg_with_a_status_callback_sends_it_there_only(carrier, twilio, hooks):
    script(carrier, AGENT, hangup_after=5)
    call = finished(carrier, place(twilio, hooks, "/dial-watched", status_callback=f"{hooks.url}/status"))
    agent = call["legs"][0]
    watched = wait_until(lambda: len(hooks.to("/agent-status")) == 3 and hooks.to("/agent-status"))
    assert [s.form["CallStatus"] for s in watched] == ["initiated", "in-progress", "completed"]
    assert {s.form["CallSid"] for s in watched} == {agent["sid"]}
    parent = wait_until(lambda: hooks.to("/status"))
    assert [(s.form["CallSid"], s.form["CallStatus"]) for s in parent] == [(call["sid"], "completed")]
    assert [seen.path for seen in hooks.seen if "CallbackSource" not in seen.form] == ["/dial-watched", "/after"]


def test_a_dialled_client_calls_back_only_for_the_events_it_names(carrier, twilio, hooks):
    script(carrier, "client:alice", hangup_after=5)
    call = finished(carrier, place(twilio, hooks, "/dial-client", status_callback=f"{hooks.url}/status"))
    assert call["legs"][0]["status"] == "completed"
    wait_until(lambda: hooks.to("/status"))
    assert hooks.to("/agent-status") == []


# --- 2: cookies per call ----------------------------------------------------------------------------------------

def test_cookies_are_kept_per_call_and_dropped_when_it_ends(carrier, twilio, hooks):
    first = finished(carrier, place(twilio, hooks, "/session", to=CUSTOMER))
    assert heard(first) == ["Hello.", f"You are {CUSTOMER}."]
    second = finished(carrier, place(twilio, hooks, "/session", to=OTHER))
    assert heard(second) == ["Hello.", f"You are {OTHER}."]  # not the first caller's session
    again = finished(carrier, place(twilio, hooks, "/session", to=CUSTOMER))
    assert heard(again) == ["Hello.", f"You are {CUSTOMER}."]
    # Each call starts without a cookie (the first call's jar went with it) and returns the one it was given.
    assert [(seen.path, seen.cookie) for seen in hooks.seen] == [
        ("/session", None), ("/session/next", CUSTOMER), ("/session", None), ("/session/next", OTHER),
        ("/session", None), ("/session/next", CUSTOMER)]


# --- 3: text and audio answers -----------------------------------------------------------------------------------

def test_a_plain_text_answer_is_spoken_then_the_call_ends(carrier, twilio, hooks):
    call = finished(carrier, place(twilio, hooks, "/text"))
    assert heard(call) == ["Thanks for calling Acme. We are closed."]
    assert call["status"] == "completed" and call["errors"] == []


@pytest.mark.parametrize("kind", ["mpeg", "wav", "x-wav", "ulaw"])
def test_an_audio_answer_is_played_then_the_call_ends(carrier, twilio, hooks, kind):
    call = finished(carrier, place(twilio, hooks, f"/audio/{kind}"))
    assert heard(call) == [f"{hooks.url}/audio/{kind}"]
    assert call["status"] == "completed" and call["errors"] == []


def test_an_answer_of_another_type_is_an_invalid_content_type(carrier, twilio, hooks):
    call = finished(carrier, place(twilio, hooks, "/json"))
    assert call["errors"][0]["code"] == 12300
    assert heard(call) == ["We're sorry, an application error has occurred. Goodbye."]


# --- 10: retries, idempotency tokens, redirects -----------------------------------------------------------------

def test_relative_urls_resolve_against_the_url_after_an_http_redirect(carrier, twilio, hooks):
    call = finished(carrier, place(twilio, hooks, "/moved"))
    assert heard(call) == ["Moved here.", "Next step."]
    assert [seen.path for seen in hooks.seen] == ["/moved", "/menu/start", "/menu/next"]


def test_a_connection_failure_is_retried_once_unless_the_url_says_otherwise(carrier, twilio):
    for fragment, attempts in (("", 2), ("#rc=0", 1), ("#rc=3", 4)):
        sid = twilio.calls.create(to=CUSTOMER, from_=SUPPORT, url=f"http://127.0.0.1:9/voice{fragment}").sid
        call = finished(carrier, sid)
        [request] = [w for w in call["webhooks"] if w["kind"] == "twiml"]
        assert (request["error_code"], request["attempts"]) == (11205, attempts), fragment


def test_retries_the_url_asks_for_carry_the_first_requests_idempotency_token(carrier, twilio, hooks):
    hooks.failures["/flaky"] = 2
    call = finished(carrier, place(twilio, hooks, "/flaky#rc=2&rp=5xx"))
    assert heard(call) == ["Got through."]
    tokens = [seen.token for seen in hooks.to("/flaky")]
    assert len(tokens) == 3 and len(set(tokens)) == 1 and tokens[0]
    # Without rp=5xx, an error answer is not retried (the default policy retries connection failures only).
    hooks.failures["/flaky"] = 1
    failed = finished(carrier, place(twilio, hooks, "/flaky"))
    assert failed["errors"][0]["code"] == 11200 and len(hooks.to("/flaky")) == 4


def test_separate_requests_carry_separate_idempotency_tokens(carrier, twilio, hooks):
    finished(carrier, place(twilio, hooks, "/session"))
    tokens = [seen.token for seen in hooks.seen]
    assert len(tokens) == 2 and len(set(tokens)) == 2 and all(tokens)


# --- no request to a URL nobody named ----------------------------------------------------------------------------

def test_a_request_to_a_url_nobody_named_is_counted(hooks):
    client = WebhookClient("token")
    client.named.name(f"{hooks.url}/status", "callback")
    client.send(f"{hooks.url}/status", "POST", {"CallSid": "CA1"}, role="callback")
    assert client.named.unnamed == []
    client.send(f"{hooks.url}/dial", "POST", {"CallSid": "CA1"}, role="callback")
    client.send(f"{hooks.url}/status", "POST", {"CallSid": "CA1"})  # named as a callback, not for TwiML
    assert client.named.unnamed == [("callback", f"{hooks.url}/dial"), ("twiml", f"{hooks.url}/status")]
