"""A webhook app written only with twilio's VoiceResponse, served over real HTTP, and helpers for carrier tests:
scripting phones, reading call timelines, and checking answers against Twilio's published schema."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import pytest
import requests
from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse
from werkzeug.serving import make_server

from carrier.server import CarrierServer
from tests.support import oai
from voice.twilio_client import make_client

AGENT = "+14155550777"
SUPPORT = "+14155550100"
CUSTOMER = "+14155550123"
SCALE = 0.005  # the carrier's clock: a minute of call takes 0.3 s
# Call seconds an agent talks after answering: 1 s of real time, so the whisper's two webhooks fit in it even when
# they are a module's first requests on a busy machine (with 20, then 120, the agent sometimes hung up during the
# whisper).
TALK = 200
# Call seconds a caller who must outlive the agent stays on: 20 s of real time, reached only when a flow breaks.
# With 400 (2 s from the caller's answer against the agent's 1 s from theirs) a busy CI machine once spent over a
# second before the agent answered, and the caller hung up during the whisper.
OUTLASTS_AGENT = 4000
# About two minutes of speech: a key or a word is always pressed before it ends.
LONG_PROMPT = " ".join(["Please listen carefully, as our menu options have changed."] * 35) + " Press 1 for support."


@dataclass
class Hit:
    path: str
    form: dict[str, str]
    signed: bool


def signed(validator: RequestValidator) -> bool:
    """Whether the request being served carries Twilio's signature for its URL and form."""
    return validator.validate(request.url, request.form, request.headers.get("X-Twilio-Signature", ""))


@dataclass
class VoiceApp:
    """An IVR menu that gathers a digit and dials an agent with a whisper; plus failure endpoints."""

    auth_token: str
    hits: list[Hit] = field(default_factory=list)
    url: str = ""

    def build(self) -> Flask:
        app = Flask("ivr")
        validator = RequestValidator(self.auth_token)

        def twiml(response: VoiceResponse) -> Response:
            return Response(str(response), mimetype="text/xml")

        @app.before_request
        def _record() -> None:
            self.hits.append(Hit(request.path, request.form.to_dict(), signed(validator)))

        @app.post("/ivr")
        def ivr() -> Response:
            response = VoiceResponse()
            gather = Gather(num_digits=1, action="/ivr/choice", timeout=5)
            gather.say("Welcome to Acme. Press 1 to talk to support.", voice="Polly.Joanna", language="en-US")
            response.append(gather)
            response.say("We did not get your choice. Goodbye.")
            response.hangup()
            return twiml(response)

        @app.post("/ivr/choice")
        def choice() -> Response:
            response = VoiceResponse()
            if request.form.get("Digits") == "1":
                response.say("Connecting you to an agent.")
                dial = Dial(action="/ivr/after-dial", timeout=20, caller_id=SUPPORT)
                dial.number(AGENT, url="/ivr/whisper", status_callback="/status",
                            status_callback_event="initiated ringing answered completed")
                response.append(dial)
            else:
                response.say("That is not an option.")
                response.redirect("/ivr")
            return twiml(response)

        @app.post("/ivr/whisper")
        def whisper() -> Response:
            response = VoiceResponse()
            gather = Gather(num_digits=1, action="/ivr/accept", timeout=5)
            gather.say("Call from Jane about the app crashing at login. Press 1 to accept.")
            response.append(gather)
            response.hangup()
            return twiml(response)

        @app.post("/ivr/accept")
        def accept() -> Response:
            response = VoiceResponse()
            if request.form.get("Digits") != "1":
                response.hangup()
            return twiml(response)

        @app.post("/ivr/after-dial")
        def after_dial() -> Response:
            response = VoiceResponse()
            response.say(f"Dial ended: {request.form.get('DialCallStatus')}.")
            response.hangup()
            return twiml(response)

        @app.route("/status", methods=["GET", "POST"])
        def status() -> Response:
            return Response(status=204)

        @app.post("/long-menu")
        def long_menu() -> Response:
            response = VoiceResponse()
            gather = Gather(num_digits=1, action="/capture", input="dtmf speech", timeout=5)
            gather.say(LONG_PROMPT)
            response.append(gather)
            response.say("We did not get your choice. Goodbye.")
            return twiml(response)

        @app.post("/capture")
        def capture() -> Response:
            return twiml(VoiceResponse())

        @app.post("/broken")
        def broken() -> Response:
            return Response("oops", status=500)

        @app.post("/json")
        def json_answer() -> Response:  # a content type Twilio neither runs, speaks nor plays
            return Response('{"say": "hello"}', mimetype="application/json")

        @app.post("/garbled")
        def garbled() -> Response:
            return Response("<Response><Say>unclosed</Response>", mimetype="text/xml")

        @app.post("/fallback")
        def fallback() -> Response:
            response = VoiceResponse()
            response.say("Sorry, we are having trouble. Please call back later.")
            return twiml(response)

        @app.route("/echo", methods=["GET", "POST"])
        def echo() -> Response:
            response = VoiceResponse()
            response.say(f"You are {request.values.get('AnsweredBy', 'unknown')}.")
            return twiml(response)

        @app.post("/record")
        def record() -> Response:
            response = VoiceResponse()
            response.say("Leave a message after the beep.")
            response.record(action="/recorded", max_length=30, timeout=3, recording_status_callback="/status")
            return twiml(response)

        @app.post("/recorded")
        def recorded() -> Response:
            response = VoiceResponse()
            response.say("Thank you.")
            response.hangup()
            return twiml(response)

        @app.post("/reject")
        def reject() -> Response:
            response = VoiceResponse()
            response.reject(reason="busy")
            return twiml(response)

        @app.post("/hold")
        def hold() -> Response:
            response = VoiceResponse()
            response.say("Please hold.")
            response.pause(length=600)
            return twiml(response)

        return app

    def hits_to(self, path: str) -> list[Hit]:
        return [hit for hit in self.hits if hit.path == path]


def twiml(response: VoiceResponse) -> Response:
    """A webhook's TwiML answer."""
    return Response(str(response), mimetype="text/xml")


def saying(text: str) -> Response:
    """A webhook's TwiML answer that says text (and so ends the document)."""
    response = VoiceResponse()
    response.say(text)
    return twiml(response)


@dataclass
class KeptApp:
    """A webhook app of a test's own that keeps every request it gets, with whether the carrier signed it."""

    auth_token: str
    url: str = ""
    hits: list[tuple[str, dict[str, str], bool]] = field(default_factory=list)

    def flask(self, name: str) -> Flask:
        """A Flask app whose requests are kept; the test adds its routes."""
        app = Flask(name)
        validator = RequestValidator(self.auth_token)

        @app.before_request
        def _keep() -> None:
            signed = validator.validate(request.url, request.form, request.headers.get("X-Twilio-Signature", ""))
            self.hits.append((request.path, request.form.to_dict(), signed))

        return app

    def forms(self, path: str) -> list[dict[str, str]]:
        """What each request to path carried, in order."""
        return [form for hit, form, _ in self.hits if hit == path]

    def build(self) -> Flask:
        """The test's app: self.flask(name) with its routes."""
        raise NotImplementedError

    @contextmanager
    def serving(self) -> Iterator[Any]:
        """Serve the built app over HTTP for the test; every request it got must have been signed."""
        server = Served(self.build())
        self.url = server.url
        try:
            yield self
        finally:
            server.stop()
        assert all(signed for _, _, signed in self.hits), [hit for hit, _, signed in self.hits if not signed]


def serving(app: VoiceApp) -> Iterator[VoiceApp]:
    """Serve the app over real HTTP for a fixture's life (yield from it)."""
    served = Served(app.build())
    app.url = served.url
    yield app
    served.stop()


class Served:
    """A WSGI app on a free local port, in a thread."""

    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_until(check: Callable[[], Any], timeout: float = 15, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {message}")


def script(carrier: CarrierServer, phone: str, **behaviour: Any) -> None:
    """Tell the carrier how a phone behaves (answers, presses, is busy...)."""
    response = requests.put(f"{carrier.url}/_carrier/phones/{phone}", json=behaviour, timeout=5)
    assert response.status_code == 200, response.text


def timeline(carrier: CarrierServer, sid: str) -> dict[str, Any]:
    """The carrier's record of a call: status, legs and events."""
    return requests.get(f"{carrier.url}/_carrier/calls/{sid}", timeout=5).json()


def finished(carrier: CarrierServer, sid: str) -> dict[str, Any]:
    """The call's record once it and all its legs have ended."""
    def done() -> dict[str, Any] | None:
        call = timeline(carrier, sid)
        ended = call["status"] in ("completed", "busy", "failed", "no-answer", "canceled")
        return call if ended and all(leg["status"] not in ("queued", "ringing", "in-progress")
                                     for leg in call["legs"]) else None
    return wait_until(done, message=f"call {sid} to end")


def heard(call: dict[str, Any]) -> list[str]:
    """What the callee heard, in order: spoken text or played URLs."""
    return [e.get("text") or e.get("url") for e in call["events"] if e["kind"] == "heard"]


def check(response: requests.Response, path: str, method: str) -> dict[str, Any]:
    """Validate a response body against the schema Twilio publishes for that path, method and status."""
    document = oai.document()
    responses = document["paths"][f"/2010-04-01/Accounts/{{AccountSid}}/{path}"][method]["responses"]
    schema = responses[str(response.status_code)]["content"]["application/json"]["schema"]
    body = response.json()
    jsonschema.Draft202012Validator({**schema, "components": document["components"]}).validate(body)
    return body


# Each carrier stopped during a test, with the requests it sent to URLs no REST call, number or TwiML named.
STRAYS: list[tuple[str, list[tuple[str, str]]]] = []
CarrierServer.on_stop.append(lambda server: STRAYS.append((server.url, list(server.engine.webhooks.named.unnamed))))


@pytest.fixture(autouse=True)
def only_named_urls() -> Iterator[None]:
    """Every test: each carrier it ran called only URLs it was given, as Twilio does (never, say, a status callback
    to a document's URL)."""
    STRAYS.clear()
    yield
    assert [(url, unnamed) for url, unnamed in STRAYS if unnamed] == []


def conforms(body: dict[str, Any], component: str) -> dict[str, Any]:
    """Validate a body against one of the schemas in Twilio's OpenAPI document (its name under components)."""
    document = oai.document()
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)
    return body


@pytest.fixture
def carrier() -> Iterator[CarrierServer]:
    """The local carrier on a fast clock, owning the support number; a module overrides it for real time."""
    with CarrierServer(scale=SCALE, numbers=(SUPPORT,)) as server:
        yield server


@pytest.fixture
def twilio(carrier: CarrierServer) -> Any:
    """The twilio library's client, talking to the carrier."""
    return make_client(carrier.state.account_sid, carrier.state.auth_token, carrier.url)
