"""The agent desk's browser phone against the carrier, as Twilio's Voice SDK is against Twilio: the page registers its
client identity, learns of the legs ringing it, and answers, presses keys, mutes and hangs up.

Only the desk's own origin (the carrier's desk URL) may call these from a browser; a registration lasts
REGISTRATION_SECONDS unless renewed, and while it lasts the identity's legs ring at the page instead of answering as
a scripted phone.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify, request

from carrier import control
from carrier.control import ControlError
from carrier.legs import Leg
from carrier.state import Call

bp = Blueprint("carrier_softphone", __name__, url_prefix="/_carrier/clients")
bp.register_error_handler(ControlError, control.control_error)

IDENTITY = re.compile(r"^[A-Za-z0-9_.@-]{1,256}$")
REGISTRATION_SECONDS = 30  # real seconds; the page renews every 10 (desk/static/phone-carrier.js)
BY = "the desk's browser phone"  # who did it, as the call's timeline says


def _desk_origin() -> str:
    desk = urlsplit(current_app.config.get("CARRIER_DESK_URL") or "")
    return f"{desk.scheme}://{desk.netloc}"


@bp.before_request
def _from_the_desk_only() -> None:
    """A browser names the page's origin: one that is not the desk's changes nothing (a form or a body-less POST
    from another site needs no preflight, so CORS alone would not stop it)."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != _desk_origin() and request.method != "OPTIONS":
        raise ControlError(403, "only the desk's own pages may use its browser phone", "origin")


@bp.after_request
def _cross_origin(response: Any) -> Any:
    """The desk is served from its own origin: it alone may read these answers and send these requests."""
    origin = request.headers.get("Origin")
    if origin and origin == _desk_origin():
        response.headers.update({"Access-Control-Allow-Origin": origin, "Access-Control-Max-Age": "600",
                                 "Access-Control-Allow-Methods": "GET, PUT, POST",
                                 "Access-Control-Allow-Headers": "Content-Type"})
    response.headers["Vary"] = "Origin"
    return response


def _identity(identity: str) -> str:
    if not IDENTITY.match(identity):
        raise ControlError(422, "the identity must be 1-256 letters, digits, _ . @ or -", "identity")
    return identity


@bp.put("/<identity>")
def register(identity: str) -> Any:
    """The page takes the identity's calls for the next REGISTRATION_SECONDS (as Device.register() does)."""
    state = control.carrier_state()
    with state.lock:
        state.desks[_identity(identity)] = time.monotonic() + REGISTRATION_SECONDS
    return jsonify(identity=identity, seconds=REGISTRATION_SECONDS)


def _muted(call: Call) -> bool:
    changes = [e["kind"] for e in call.events if e["kind"] in ("muted", "unmuted")]
    return bool(changes) and changes[-1] == "muted"


@bp.get("/<identity>/calls")
def calls(identity: str) -> Any:
    """The identity's live legs, oldest first: what rings at the page and what it is on."""
    state, engine = control.carrier_state(), control.carrier_engine()
    address = f"client:{_identity(identity)}"
    with state.lock:
        live = [(c, engine.legs.get(c.sid)) for c in state.calls.values() if c.to == address and not c.ended]
        return jsonify(calls=[{"sid": c.sid, "status": c.status, "from": c.from_, "parent_call_sid": c.parent_call_sid,
                               "at_desk": bool(leg and leg.script.answer == "manual"),
                               "listening": sorted(leg.listening) if leg else [], "muted": _muted(c)}
                              for c, leg in live])


def _leg(identity: str, sid: str) -> Leg:
    """A live leg ringing the identity at the page; 404 for any other call, so other calls can't be driven."""
    call = control.carrier_state().calls.get(sid)
    leg = control.carrier_engine().legs.get(sid)
    if call is None or call.to != f"client:{_identity(identity)}" or leg is None:
        raise ControlError(404, f"no live call {sid} to client:{identity}")
    return leg


@bp.post("/<identity>/calls/<sid>/answer")
def answer(identity: str, sid: str) -> Any:
    leg = _leg(identity, sid)
    response = control.answer(sid)
    control.carrier_engine().event(leg.call, "picked_up", by=BY)
    return response


@bp.post("/<identity>/calls/<sid>/keys")
def press_keys(identity: str, sid: str) -> Any:
    _leg(identity, sid)
    return control.press_keys(sid)


@bp.post("/<identity>/calls/<sid>/mute")
def mute(identity: str, sid: str) -> Any:
    """Mute or unmute the page's microphone: the carrier carries no sound, so the timeline notes it."""
    leg = _leg(identity, sid)
    muted = control.json_body().get("muted")
    if not isinstance(muted, bool):
        raise ControlError(422, "muted must be true or false", "muted")
    control.carrier_engine().event(leg.call, "muted" if muted else "unmuted", by=BY)
    return jsonify(sid=sid, muted=muted)


@bp.post("/<identity>/calls/<sid>/hangup")
def hang_up(identity: str, sid: str) -> Any:
    leg = _leg(identity, sid)
    control.carrier_engine().event(leg.call, "hung_up", by=BY)
    return control.hang_up(sid)
