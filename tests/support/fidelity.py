"""Three small voice apps written for the fidelity suite, as Twilio's samples are (plain Flask and twilio's
VoiceResponse, none of Threadline's code): an IVR phone tree, call forwarding with a fallback message, and a warm
transfer from one agent to another; each logs every request it receives."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from tests.support.carrier import signed

FIRST_AGENT = "+14155550777"
SECOND_AGENT = "+14155550778"
# What every request of a call carries (Twilio's "request parameters" for voice webhooks).
STANDARD = ("CallSid", "AccountSid", "From", "To", "CallStatus", "ApiVersion", "Direction", "Caller", "Called")


@dataclass
class Request:
    path: str
    form: dict[str, str]
    signed: bool

    @property
    def callback(self) -> bool:
        """A status callback (call progress), not a request for TwiML."""
        return "CallbackSource" in self.form or self.path.endswith("/status")


@dataclass
class Log:
    """What an app received, in order."""

    auth_token: str
    requests: list[Request] = field(default_factory=list)

    def app(self, name: str) -> Flask:
        app = Flask(name)
        validator = RequestValidator(self.auth_token)

        @app.before_request
        def _log() -> None:
            self.requests.append(Request(request.path, request.form.to_dict(), signed(validator)))

        @app.post("/status")
        def status() -> Response:
            return Response(status=204)

        return app

    def twiml_paths(self) -> list[str]:
        return [r.path for r in self.requests if not r.callback]

    def to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]


def answer(response: VoiceResponse) -> Response:
    return Response(str(response), mimetype="text/xml")


def speak(*texts: str, hang_up: bool = False) -> Response:
    """TwiML that says each text in turn (then hangs up, if asked)."""
    response = VoiceResponse()
    for text in texts:
        response.say(text)
    if hang_up:
        response.hangup()
    return answer(response)


def say_and_dial(text: str, action: str, number: str, **noun: str) -> Response:
    """TwiML that says text, then dials number (with the noun's attributes) and goes on at action."""
    response = VoiceResponse()
    response.say(text)
    dial = Dial(action=action, timeout=15)
    dial.number(number, **noun)
    response.append(dial)
    return answer(response)


def ivr(log: Log) -> Flask:
    """A phone tree: 1 hears opening hours, 2 picks a department that is dialled; anything else starts over."""
    app = log.app("ivr")

    @app.post("/welcome")
    def welcome() -> Response:
        response = VoiceResponse()
        gather = Gather(num_digits=1, action="/menu", method="POST")
        gather.say("Thanks for calling Acme. Press 1 for our hours, press 2 to talk to someone.", loop=2)
        response.append(gather)
        response.redirect("/welcome")  # no key: the menu again
        return answer(response)

    @app.post("/menu")
    def menu() -> Response:
        choice = request.form.get("Digits")
        if choice == "1":
            return speak("We are open nine to five, Monday to Friday. Goodbye.", hang_up=True)
        response = VoiceResponse()
        if choice == "2":
            gather = Gather(num_digits=1, action="/department")
            gather.say("Press 3 for sales, press 4 for support.")
            response.append(gather)
            return answer(response)
        response.say("Sorry, that is not an option.")
        response.redirect("/welcome")
        return answer(response)

    @app.post("/department")
    def department() -> Response:
        agent = FIRST_AGENT if request.form.get("Digits") == "3" else SECOND_AGENT
        return say_and_dial("Connecting you now.", "/dialled", agent)

    @app.post("/dialled")
    def dialled() -> Response:
        if request.form.get("DialCallStatus") != "completed":
            return speak("Nobody could take your call. Goodbye.", hang_up=True)
        return speak(hang_up=True)

    return app


def forwarding(log: Log) -> Flask:
    """Forward every call to the agent; when the agent does not take it, say so and hang up."""
    app = log.app("forwarding")

    @app.post("/forward")
    def forward() -> Response:
        response = VoiceResponse()
        dial = Dial(action="/forwarded", timeout=20, caller_id=request.form["To"])
        dial.number(FIRST_AGENT)
        response.append(dial)
        return answer(response)

    @app.post("/forwarded")
    def forwarded() -> Response:
        status = request.form["DialCallStatus"]
        if status != "completed":
            return speak(f"The agent is unavailable ({status}). Please call again later.", hang_up=True)
        return speak(hang_up=True)

    return app


def warm_transfer(log: Log) -> Flask:
    """The first agent hears who is calling, talks to the caller, then hands the call to the second agent, whom the
    app dials with a summary and watches through status callbacks."""
    app = log.app("warm-transfer")

    @app.post("/incoming")
    def incoming() -> Response:
        return say_and_dial("Please wait while we connect you.", "/first-done", FIRST_AGENT, url="/whisper/first")

    @app.post("/whisper/first")
    def whisper_first() -> Response:
        return speak("A customer about billing.")

    @app.post("/first-done")
    def first_done() -> Response:  # only if the caller was never transferred
        return speak(hang_up=True)

    @app.post("/transfer")
    def transfer() -> Response:
        return say_and_dial("Transferring you to a specialist.", "/transferred", SECOND_AGENT, url="/whisper/second",
                            status_callback="/transfer/status",
                            status_callback_event="initiated ringing answered completed")

    @app.post("/whisper/second")
    def whisper_second() -> Response:
        return speak("Transferred by the first agent: billing question.")

    @app.post("/transfer/status")
    def transfer_status() -> Response:
        return Response(status=204)

    @app.post("/transferred")
    def transferred() -> Response:
        return speak("Thank you for calling. Goodbye.", hang_up=True)

    return app
