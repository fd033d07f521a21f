"""The carrier's own controls under /_carrier/: numbers, phone scripts, inbound calls, call timelines."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request

from carrier.callers import caller_name
from carrier.engine import Engine
from carrier.state import ANSWERED_BY, ANSWERS, ROUTES, Call, CarrierState, PhoneScript, new_sid

bp = Blueprint("carrier_control", __name__, url_prefix="/_carrier", template_folder="templates",
               static_folder="static")

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
VERSTAT = re.compile(r"^[A-Za-z0-9-]{1,40}$")
ADDRESS = re.compile(r"^(\+[1-9]\d{6,14}|client:[A-Za-z0-9_.@-]{1,256})$")


class ControlError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


@bp.errorhandler(ControlError)
def control_error(exc: ControlError) -> Any:
    """The error as JSON: a code, the message and the field at fault."""
    code = {422: "invalid", 404: "not_found", 409: "not_listening", 403: "forbidden"}[exc.status]
    body: dict[str, Any] = {"code": code, "message": exc.message}
    if exc.field:
        body["field"] = exc.field
    return jsonify(error=body), exc.status


def carrier_state() -> CarrierState:
    """The running carrier's records."""
    return current_app.extensions["carrier.state"]


def carrier_engine() -> Engine:
    """The running carrier's engine, with its live legs."""
    return current_app.extensions["carrier.engine"]


def json_body() -> dict[str, Any]:
    """The request's JSON object (an empty body is an empty object); 422 for anything else."""
    data = request.get_json(silent=True)
    if data is None:
        data = {} if not request.get_data() else None
    if not isinstance(data, dict):
        raise ControlError(422, "the body must be a JSON object")
    return data


@bp.put("/numbers/<phone>")
def put_number(phone: str) -> Any:
    """Give the account a phone number (an IncomingPhoneNumber with its own SID); voice_application_sid or
    trunk_sid attach it to a TwiML App or SIP trunk (null detaches), as the Twilio Console can."""
    if not E164.match(phone):
        raise ControlError(422, "the number must be E.164, e.g. +14155550100", "phone")
    body = json_body()
    for key, pattern in ROUTES.items():
        if body.get(key) is not None and not (isinstance(body[key], str) and pattern.match(body[key])):
            raise ControlError(422, f"{key} must be {pattern.pattern[1:3]} followed by 32 hex digits, or null",
                               key)
    if all(body.get(key) for key in ROUTES):
        raise ControlError(422, "a number is attached to a TwiML App or a SIP trunk, not both", "trunk_sid")
    state = carrier_state()
    number = state.add_number(phone, body.get("friendly_name"))
    with state.lock:
        if isinstance(body.get("friendly_name"), str) and body["friendly_name"].strip():
            number.friendly_name = body["friendly_name"].strip()
        for key in ("voice_url", "voice_fallback_url", "status_callback"):
            if key in body:
                setattr(number, key, body[key])
        for key in ROUTES:
            if key in body:
                number.set_route(key, body[key])
    return jsonify(number.to_json())


def script_from(body: dict[str, Any]) -> PhoneScript:
    """Validate a phone script; ControlError names the field at fault."""
    known = {"answer", "answered_by", "ring_seconds", "keys", "speech", "hangup_after", "record_seconds",
             "message", "stir_verstat", "label"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise ControlError(422, f"unknown field {unknown[0]!r}", unknown[0])
    script = PhoneScript()
    if "answer" in body:
        if body["answer"] not in ANSWERS:
            raise ControlError(422, f"answer must be one of {', '.join(ANSWERS)}", "answer")
        script.answer = body["answer"]
    if "answered_by" in body:
        if body["answered_by"] not in ANSWERED_BY:
            raise ControlError(422, f"answered_by must be one of {', '.join(ANSWERED_BY)}", "answered_by")
        script.answered_by = body["answered_by"]
    for key in ("ring_seconds", "hangup_after", "record_seconds"):
        if key in body:
            value = body[key]
            if value is None and key == "hangup_after":
                continue
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ControlError(422, f"{key} must be a number of seconds", key)
            setattr(script, key, float(value))
    for key in ("keys", "speech"):
        if key in body:
            values = body[key]
            if not isinstance(values, list) or not all(v is None or isinstance(v, str) for v in values):
                raise ControlError(422, f"{key} must be a list of strings (null to enter nothing)", key)
            if key == "keys" and any(v and not re.fullmatch(r"[0-9*#w]+", v) for v in values):
                raise ControlError(422, "keys may hold only 0-9, * and #", key)
            setattr(script, key, list(values))
    if body.get("stir_verstat") is not None:
        if not isinstance(body["stir_verstat"], str) or not VERSTAT.match(body["stir_verstat"]):
            raise ControlError(422, "stir_verstat must be a verification result such as TN-Validation-Passed-A",
                               "stir_verstat")
        script.stir_verstat = body["stir_verstat"]
    if body.get("message") is not None:
        if not isinstance(body["message"], str) or len(body["message"]) > 1000:
            raise ControlError(422, "message must be the words the phone says into a <Record> (at most 1000 "
                               "characters)", "message")
        script.message = body["message"]
    if body.get("label") is not None:
        if not isinstance(body["label"], str) or not 0 < len(body["label"].strip()) <= 60:
            raise ControlError(422, "label must be a name of 1-60 characters, e.g. Sam's desk phone", "label")
        script.label = body["label"].strip()
    return script


@bp.put("/settings")
def put_settings() -> Any:
    """How status callbacks are delivered: 'in-order', or 'reordered' (held, newest first, each twice)."""
    body = json_body()
    order = body.get("status_callbacks", "in-order")
    if order not in ("in-order", "reordered") or set(body) - {"status_callbacks"}:
        raise ControlError(422, "status_callbacks must be 'in-order' or 'reordered'", "status_callbacks")
    carrier_engine().callback_order = order
    return jsonify(status_callbacks=order)


@bp.put("/phones/<path:address>")
def put_phone(address: str) -> Any:
    """Script how a phone (E.164 or client:identity) behaves when called, and what it enters."""
    if not ADDRESS.match(address):
        raise ControlError(422, "the phone must be E.164 or client:identity", "phone")
    script = script_from(json_body())
    with carrier_state().lock:
        carrier_state().phones[address] = script
    carrier_state().save_phones()
    return jsonify(address=address, **script.__dict__)


@bp.get("/phones")
def list_phones() -> Any:
    """The scripted phones, and the page's own."""
    state = carrier_state()
    with state.lock:
        return jsonify(you=state.you, phones=[{"address": address, **script.__dict__}
                                               for address, script in state.phones.items()])


@bp.get("/you")
def get_you() -> Any:
    """The page's own phone: calls from or to it take the page's keys and speech, live."""
    return jsonify(phone=carrier_state().you)


@bp.put("/you")
def put_you() -> Any:
    """Set (or, with null, forget) the page's own phone; it rings at the page and listens to it when called."""
    phone = json_body().get("phone")
    if phone is not None and (not isinstance(phone, str) or not E164.match(phone)):
        raise ControlError(422, "phone must be E.164, e.g. +14155550123 (or null to forget it)", "phone")
    with carrier_state().lock:
        carrier_state().you = phone
    carrier_state().save_phones()
    return jsonify(phone=phone)


@bp.post("/inbound")
def inbound() -> Any:
    """A phone dials one of the account's numbers; the number's VoiceUrl answers, as with Twilio, unless the number
    is attached to a TwiML App or SIP trunk, which the carrier cannot run: then the call fails and says why."""
    body = json_body()
    caller, dialled = body.get("from"), body.get("to")
    if not isinstance(caller, str) or not ADDRESS.match(caller):
        raise ControlError(422, "from must be an E.164 number", "from")
    number = carrier_state().number_by_phone(dialled) if isinstance(dialled, str) else None
    if number is None:
        raise ControlError(422, "to must be one of the account's numbers (PUT /_carrier/numbers/{e164})", "to")
    script = carrier_state().script_for(caller)
    call = Call(new_sid("CA"), number.account_sid, number.phone_number, caller, "inbound",
                phone_number_sid=number.sid, url=number.voice_url, method=number.voice_method,
                fallback_url=number.voice_fallback_url, fallback_method=number.voice_fallback_method,
                status_callback=number.status_callback, status_callback_method=number.status_callback_method,
                stir_verstat=script.stir_verstat, routed_to=number.routed_past_voice_url(),
                caller_name=caller_name(number, script))
    carrier_engine().start(call, script)
    return jsonify(sid=call.sid), 201


def timeline(call: Call, state: CarrierState, engine: Engine | None = None) -> dict[str, Any]:
    """A call with what happened on it, and its child legs the same way; with the engine, whether the page
    drives the leg's phone (`live`) and what a running Gather takes from it (`listening`)."""
    with state.lock:
        legs = [c for c in state.calls.values() if c.parent_call_sid == call.sid]
        leg = engine.legs.get(call.sid) if engine else None
        return {**call.to_json(), "events": list(call.events), "webhooks": list(call.webhooks),
                "errors": list(call.errors),
                "notifications": list(call.notifications), "from_label": state.label_of(call.from_),
                "to_label": state.label_of(call.to), "live": bool(leg and leg.script.answer == "manual"),
                "listening": sorted(leg.listening) if leg else [],
                "legs": [timeline(child, state, engine) for child in legs]}


@bp.get("/calls")
def list_calls() -> Any:
    state = carrier_state()
    with state.lock:
        top = [c for c in state.calls.values() if c.parent_call_sid is None]
        return jsonify(calls=[timeline(c, state, carrier_engine()) for c in reversed(top)])


def _call(sid: str) -> Call:
    call = carrier_state().calls.get(sid)
    if call is None:
        raise ControlError(404, f"no call {sid}")
    return call


@bp.get("/calls/<sid>")
def get_call(sid: str) -> Any:
    return jsonify(timeline(_call(sid), carrier_state(), carrier_engine()))


@bp.post("/calls/<sid>/answer")
def answer(sid: str) -> Any:
    """Pick up a ringing phone whose script says it is answered by hand."""
    leg = carrier_engine().legs.get(_call(sid).sid)
    if leg is None or leg.script.answer != "manual":
        raise ControlError(422, "only a ringing phone scripted as 'manual' can be answered here")
    leg.manual_answer.set()
    return jsonify(sid=sid, answered=True)


def _give(sid: str, kind: str, value: str) -> None:
    """Hand keys or words to a leg's running Gather; 409 when none takes them (nothing is delivered)."""
    leg = carrier_engine().legs.get(_call(sid).sid)
    if leg is None:
        raise ControlError(422, "the call is over")
    if leg.script.answer != "manual":
        raise ControlError(409, "this phone is scripted: only your phone, or one set to ring until answered here, "
                           "takes keys and speech from the page")
    if not leg.give(kind, value):
        what = "keys" if kind == "dtmf" else "speech"
        raise ControlError(409, f"nothing is listening for {what} on this call right now (only a <Gather> does): "
                           "not sent")


@bp.post("/calls/<sid>/keys")
def press_keys(sid: str) -> Any:
    """Press keys on a live phone; they reach the running Gather (cutting its prompt short) or are refused."""
    digits = str(json_body().get("digits", ""))
    if not re.fullmatch(r"[0-9*#]{1,32}", digits):
        raise ControlError(422, "digits must be 1-32 of 0-9, * and #", "digits")
    _give(sid, "dtmf", digits)
    return jsonify(sid=sid, pressed=digits)


@bp.post("/calls/<sid>/speech")
def speak(sid: str) -> Any:
    """Say words on a live phone; a Gather that takes speech gets them as SpeechResult (cutting its prompt short)."""
    text = json_body().get("text")
    if not isinstance(text, str) or not 0 < len(text.strip()) <= 200:
        raise ControlError(422, "text must be 1-200 characters of what you say", "text")
    _give(sid, "speech", text.strip())
    return jsonify(sid=sid, said=text.strip())


@bp.post("/calls/<sid>/hangup")
def hang_up(sid: str) -> Any:
    """The phone on this leg hangs up."""
    leg = carrier_engine().legs.get(_call(sid).sid)
    if leg is None:
        raise ControlError(422, "the call is over")
    if leg.answered_at is None:
        leg.interrupt("cancel")
    else:
        leg.hang_up()
    return jsonify(sid=sid)


@bp.get("/")
def page() -> Any:
    """The dev phone: live calls, their timelines, and buttons to answer and press keys."""
    state = carrier_state()
    with state.lock:
        return render_template("carrier/phone.html", numbers=list(state.numbers.values()), you=state.you,
                               desk_url=current_app.config.get("CARRIER_DESK_URL"))
