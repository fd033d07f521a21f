"""The subset of Twilio's 2010-04-01 REST API that Threadline uses: Calls, IncomingPhoneNumbers, Recordings."""

from __future__ import annotations

import hmac
import math
import operator
import re
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from carrier.engine import Engine
from carrier.recordings import CHANNELS, RECORDING_EVENTS, RecordingPlan, mp3, wav
from carrier.state import API_VERSION, ROUTES, Call, CarrierState, IncomingNumber, new_sid, utcnow

bp = Blueprint("twilio_rest", __name__, url_prefix=f"/{API_VERSION}/Accounts/<account_sid>")

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
CLIENT = re.compile(r"^client:[A-Za-z0-9_.@-]{1,256}$")
HTTP_URL = re.compile(r"^https?://[^\s/]+", re.IGNORECASE)
STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")


class TwilioError(Exception):
    """Answered in Twilio's error shape, so the twilio library raises TwilioRestException."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@bp.errorhandler(TwilioError)
def _twilio_error(exc: TwilioError) -> Response:
    response = jsonify(code=exc.code, message=exc.message, more_info=f"https://www.twilio.com/docs/errors/{exc.code}",
                       status=exc.status)
    response.status_code = exc.status
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return response


def _state() -> CarrierState:
    return current_app.extensions["carrier.state"]


def _engine() -> Engine:
    return current_app.extensions["carrier.engine"]


@bp.before_request
def _authenticate() -> None:
    state = _state()
    auth = request.authorization
    ok = auth is not None and auth.type == "basic" and \
        hmac.compare_digest(auth.username or "", state.account_sid) and \
        hmac.compare_digest(auth.password or "", state.auth_token)
    if not ok:
        raise TwilioError(401, 20003, "Authenticate")
    if (request.view_args or {}).get("account_sid") != state.account_sid:
        raise TwilioError(404, 20404, f"The requested resource {request.path} was not found")


def _not_found() -> TwilioError:
    return TwilioError(404, 20404, f"The requested resource {request.path} was not found")


def _lookup(records: dict[str, Any], sid: str) -> Any:
    """The record with that SID, or Twilio's 404."""
    record = records.get(sid)
    if record is None:
        raise _not_found()
    return record


def _call(sid: str) -> Call:
    return _lookup(_state().calls, sid)


def _url_param(name: str) -> str | None:
    value = request.form.get(name)
    if value and not HTTP_URL.match(value):
        raise TwilioError(400, 21205, f"{name} is not a valid URL: {value}")
    return value or None


def _method_param(name: str) -> str:
    value = (request.form.get(name) or "POST").upper()
    if value not in ("GET", "POST"):
        raise TwilioError(400, 21209, f"{name} must be GET or POST")
    return value


def _seconds(name: str, default: float, low: float, high: float) -> float:
    raw = request.form.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise TwilioError(400, 21208 if name == "Timeout" else 20001, f"{name} must be a number of seconds")
    return min(max(value, low), high)


@bp.post("/Calls.json")
def create_call(account_sid: str) -> Any:
    """Place an outbound call (form-encoded, like Twilio)."""
    state, form = _state(), request.form
    to, from_ = (form.get("To") or "").strip(), (form.get("From") or "").strip()
    if not to:
        raise TwilioError(400, 21201, "No 'To' number is specified")
    if not from_:
        raise TwilioError(400, 21213, "No 'From' number is specified")
    if not (E164.match(to) or CLIENT.match(to)):
        raise TwilioError(400, 21211, f"The phone number you are attempting to call, {to}, is not valid.")
    if not (E164.match(from_) or CLIENT.match(from_)):
        raise TwilioError(400, 21212, f"From is not a valid phone number: {from_}")
    if E164.match(from_) and state.number_by_phone(from_) is None:
        raise TwilioError(400, 21210, f"The source phone number provided, {from_}, is not yet verified for your "
                          "account. You may only make calls from phone numbers that you've verified or purchased "
                          "from Twilio.")
    url, twiml = _url_param("Url"), form.get("Twiml")
    if form.get("ApplicationSid"):
        raise TwilioError(400, 21218, "ApplicationSid is not supported by the local carrier; use Url or Twiml")
    if not url and not twiml:
        raise TwilioError(400, 21205, "Url parameter is required.")
    events = [e for value in form.getlist("StatusCallbackEvent") for e in value.replace(",", " ").split()]
    unknown = [e for e in events if e not in STATUS_EVENTS]
    if unknown:
        raise TwilioError(400, 21626, f"StatusCallbackEvent {unknown[0]!r} is not one of {', '.join(STATUS_EVENTS)}")
    detection = form.get("MachineDetection")
    if detection and detection not in ("Enable", "DetectMessageEnd"):
        raise TwilioError(400, 21207, "MachineDetection must be Enable or DetectMessageEnd")
    recording = _recording_plan()
    call = Call(new_sid("CA"), account_sid, to, from_, "outbound-api",
                url=url, method=_method_param("Method"), twiml=None if url else twiml,
                fallback_url=_url_param("FallbackUrl"), fallback_method=_method_param("FallbackMethod"),
                status_callback=_url_param("StatusCallback"),
                status_callback_method=_method_param("StatusCallbackMethod"),
                status_callback_events=tuple(events) or ("completed",),
                machine_detection=detection, async_amd=(form.get("AsyncAmd") or "").lower() == "true",
                async_amd_status_callback=_url_param("AsyncAmdStatusCallback"),
                async_amd_status_callback_method=_method_param("AsyncAmdStatusCallbackMethod"),
                machine_detection_timeout=_seconds("MachineDetectionTimeout", 30, 3, 59),
                timeout=_seconds("Timeout", 60, 1, 600), time_limit=_seconds("TimeLimit", 14400, 1, 86400),
                recording=recording)
    response = jsonify(call.to_json())  # as placed: queued
    response.status_code = 201
    _engine().start(call)
    return response


def _recording_plan() -> RecordingPlan | None:
    """Record=true: the whole call is recorded from its answer, reported to RecordingStatusCallback."""
    form = request.form
    record = (form.get("Record") or "false").lower()
    if record not in ("true", "false"):
        raise TwilioError(400, 20001, "Record must be true or false")
    channels = form.get("RecordingChannels") or "mono"
    if channels not in CHANNELS:
        raise TwilioError(400, 20001, "RecordingChannels must be mono or dual")
    events = tuple(e for value in form.getlist("RecordingStatusCallbackEvent") for e in value.replace(",", " ").split())
    unknown = [e for e in events if e not in RECORDING_EVENTS]
    if unknown:
        raise TwilioError(400, 20001, f"RecordingStatusCallbackEvent {unknown[0]!r} is not one of "
                          f"{', '.join(RECORDING_EVENTS)}")
    if record == "false":
        return None
    return RecordingPlan("OutboundAPI", CHANNELS[channels], callback=_url_param("RecordingStatusCallback"),
                         method=_method_param("RecordingStatusCallbackMethod"), events=events or ("completed",))


def _parse_time(name: str, value: str) -> datetime:
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise TwilioError(400, 20001, f"{name} must be a date (YYYY-MM-DD) or a UTC time (YYYY-MM-DDTHH:MM:SSZ)")


def _page(key: str, items: list[dict[str, Any]], path: str, filters: dict[str, str]) -> Response:
    try:
        size = min(max(int(request.args.get("PageSize", 50)), 1), 1000)
        page = max(int(request.args.get("Page", 0)), 0)
    except ValueError:
        raise TwilioError(400, 20001, "PageSize and Page must be whole numbers") from None
    start = page * size
    chunk = items[start:start + size]

    def uri(number: int) -> str:
        query = {**filters, "PageSize": size, "Page": number}
        if number:
            query["PageToken"] = f"PA{number}"
        return f"{path}?{urlencode(query)}"

    return jsonify({key: chunk, "end": start + max(len(chunk) - 1, 0), "first_page_uri": uri(0),
                    "next_page_uri": uri(page + 1) if start + size < len(items) else None,
                    "page": page, "page_size": size, "previous_page_uri": uri(page - 1) if page else None,
                    "start": start, "uri": uri(page)})


@bp.get("/Calls.json")
def list_calls(account_sid: str) -> Any:
    """Calls newest first, filtered by To, From, Status, ParentCallSid and start/end times."""
    args = request.args
    filters = {k: v for k, v in args.items() if k not in ("PageSize", "Page", "PageToken")}
    bounds = []
    for name in ("StartTime", "EndTime"):
        for suffix, test in ((">", operator.ge), ("<", operator.le), ("", None)):
            if args.get(name + suffix):
                moment = _parse_time(name + suffix, args[name + suffix])
                bounds.append((name, moment, test))
    with _state().lock:
        calls = list(_state().calls.values())
    chosen = []
    for call in reversed(calls):
        if any(args.get(param) and args[param] != value for param, value in
               (("To", call.to), ("From", call.from_), ("Status", call.status),
                ("ParentCallSid", call.parent_call_sid))):
            continue
        keep = True
        for name, moment, test in bounds:
            value = call.start_time if name == "StartTime" else call.end_time
            # Twilio filters by date ("Specify a date as YYYY-MM-DD in UTC"): a time given with it is not used.
            keep = keep and value is not None and (test or operator.eq)(value.date(), moment.date())
        if keep:
            chosen.append(call.to_json())
    return _page("calls", chosen, f"/{API_VERSION}/Accounts/{account_sid}/Calls.json", filters)


@bp.get("/Calls/<sid>.json")
def fetch_call(account_sid: str, sid: str) -> Any:
    return jsonify(_call(sid).to_json())


@bp.post("/Calls/<sid>.json")
def update_call(account_sid: str, sid: str) -> Any:
    """Redirect a live call (Url or Twiml), cancel a queued or ringing one, or hang one up."""
    call, form = _call(sid), request.form
    url, twiml, status = _url_param("Url"), form.get("Twiml"), form.get("Status")
    if status and status not in ("canceled", "completed"):
        raise TwilioError(400, 21218, f"Status must be canceled or completed, not {status!r}")
    if (url or twiml) and call.ended:
        raise TwilioError(400, 21220, "Call is not in-progress. Cannot redirect.")
    if form.get("StatusCallback"):
        call.status_callback = _url_param("StatusCallback")
        call.status_callback_method = _method_param("StatusCallbackMethod")
    _engine().update(call, url=url, method=_method_param("Method"), twiml=twiml, status=status)
    if status and not call.ended:
        deadline = time.monotonic() + 2
        while not call.ended and time.monotonic() < deadline:
            time.sleep(0.01)
    return jsonify(call.to_json())


def _number(sid: str) -> IncomingNumber:
    return _lookup(_state().numbers, sid)


@bp.get("/IncomingPhoneNumbers.json")
def list_numbers(account_sid: str) -> Any:
    args = request.args
    numbers = [n.to_json() for n in _state().numbers.values()
               if (not args.get("PhoneNumber") or n.phone_number == args["PhoneNumber"])
               and (not args.get("FriendlyName") or n.friendly_name == args["FriendlyName"])]
    filters = {k: v for k, v in args.items() if k in ("PhoneNumber", "FriendlyName")}
    return _page("incoming_phone_numbers", numbers, f"/{API_VERSION}/Accounts/{account_sid}/IncomingPhoneNumbers.json",
                 filters)


@bp.get("/IncomingPhoneNumbers/<sid>.json")
def fetch_number(account_sid: str, sid: str) -> Any:
    return jsonify(_number(sid).to_json())


@bp.post("/IncomingPhoneNumbers/<sid>.json")
def update_number(account_sid: str, sid: str) -> Any:
    """Change where the number's calls go: VoiceUrl, VoiceMethod, VoiceFallbackUrl, StatusCallback, FriendlyName,
    VoiceApplicationSid and TrunkSid (an empty value detaches the number from its application or trunk)."""
    number, form = _number(sid), request.form
    routes: dict[str, str] = {}
    for param, attribute, code in (("VoiceApplicationSid", "voice_application_sid", 21218),
                                   ("TrunkSid", "trunk_sid", 20001)):
        if param in form:
            routes[attribute] = form[param].strip()
            if routes[attribute] and not ROUTES[attribute].match(routes[attribute]):
                raise TwilioError(400, code, f"{param} is not valid: {routes[attribute]}")
    if all(routes.get(attribute) for attribute in ROUTES):
        raise TwilioError(400, 20001, "A number takes either a VoiceApplicationSid or a TrunkSid, not both")
    updates: dict[str, Any] = {}
    for param, attribute in (("VoiceUrl", "voice_url"), ("VoiceFallbackUrl", "voice_fallback_url"),
                             ("StatusCallback", "status_callback")):
        if param in form:
            updates[attribute] = _url_param(param)
    for param, attribute in (("VoiceMethod", "voice_method"), ("VoiceFallbackMethod", "voice_fallback_method"),
                             ("StatusCallbackMethod", "status_callback_method")):
        if param in form:
            updates[attribute] = _method_param(param)
    if "FriendlyName" in form:
        updates["friendly_name"] = form["FriendlyName"][:64]
    with _state().lock:
        for attribute, value in updates.items():
            setattr(number, attribute, value)
        for attribute, value in routes.items():
            number.set_route(attribute, value)
        number.date_updated = utcnow()
    return jsonify(number.to_json())


@bp.get("/Recordings/<sid>.json")
def fetch_recording(account_sid: str, sid: str) -> Any:
    return jsonify(_lookup(_state().recordings, sid).to_json())


@bp.get("/Recordings/<name>")
def recording_media(account_sid: str, name: str) -> Any:
    """The recording's audio (silence of its length, at most ten seconds): WAV by default or for .wav, MP3 for
    .mp3, as Twilio serves a RecordingUrl with or without an extension."""
    sid, _, extension = name.partition(".")
    recording = _lookup(_state().recordings, sid)
    if extension == "mp3":
        return Response(mp3(recording.duration), mimetype="audio/mpeg")
    if extension not in ("", "wav"):
        raise _not_found()
    return Response(wav(recording.duration, recording.channels), mimetype="audio/x-wav")


def twilio_http_error(exc: HTTPException) -> Any:
    """Unknown paths and methods under the API answer in Twilio's error shape, as the twilio library expects."""
    code = 20404 if exc.code == 404 else 20001
    return _twilio_error(TwilioError(exc.code or 400, code, f"The requested resource {request.path} was not found"
                                     if exc.code == 404 else f"Method {request.method} not allowed on {request.path}"))


@bp.get("/Calls/<call_sid>/Recordings.json")
def list_call_recordings(account_sid: str, call_sid: str) -> Any:
    _call(call_sid)
    recordings = [r.to_json() for r in _state().recordings.values() if r.call_sid == call_sid]
    return _page("recordings", recordings, f"/{API_VERSION}/Accounts/{account_sid}/Calls/{call_sid}/Recordings.json",
                 {})
