"""The Calls resource of Twilio's 2010-04-01 REST API, with its Events and Notifications, and the account's
Notifications."""

from __future__ import annotations

import re
import time
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from flask import jsonify, request

from carrier.recordings import CHANNELS, RECORDING_EVENTS, RecordingPlan
from carrier.rest import (
    TwilioError,
    bp,
    by_date,
    choice,
    date_filters,
    engine,
    lookup,
    method_param,
    not_found,
    page,
    remove,
    seconds,
    state,
    url_param,
    whole,
)
from carrier.state import API_VERSION, FINAL_STATUSES, Call, new_sid, rfc2822

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
CLIENT = re.compile(r"^client:[A-Za-z0-9_.@-]{1,256}$")
STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")
CALL_STATUSES = ("queued", "ringing", "in-progress", *FINAL_STATUSES)
TWIML_LIMIT = 4000  # characters of a Twiml parameter (error 32018 beyond)


def _call(sid: str) -> Call:
    return lookup(state().calls, sid)


@bp.post("/Calls.json")
def create_call(account_sid: str) -> Any:
    """Place an outbound call (form-encoded, like Twilio)."""
    form = request.form
    to, from_ = (form.get("To") or "").strip(), (form.get("From") or "").strip()
    if not to:
        raise TwilioError(400, 21201, "No 'To' number is specified")
    if not from_:
        raise TwilioError(400, 21213, "No 'From' number is specified")
    if not (E164.match(to) or CLIENT.match(to)):
        raise TwilioError(400, 21211, f"The phone number you are attempting to call, {to}, is not valid.")
    if not (E164.match(from_) or CLIENT.match(from_)):
        raise TwilioError(400, 21212, f"From is not a valid phone number: {from_}")
    if E164.match(from_) and state().number_by_phone(from_) is None:
        raise TwilioError(400, 21210, f"The source phone number provided, {from_}, is not yet verified for your "
                          "account. You may only make calls from phone numbers that you've verified or purchased "
                          "from Twilio.")
    url, twiml = url_param("Url"), _twiml()
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
                url=url, method=method_param("Method"), twiml=None if url else twiml,
                fallback_url=url_param("FallbackUrl"), fallback_method=method_param("FallbackMethod"),
                status_callback=url_param("StatusCallback"),
                status_callback_method=method_param("StatusCallbackMethod"),
                status_callback_events=tuple(events) or ("completed",),
                machine_detection=detection, async_amd=(form.get("AsyncAmd") or "").lower() == "true",
                async_amd_status_callback=url_param("AsyncAmdStatusCallback"),
                async_amd_status_callback_method=method_param("AsyncAmdStatusCallbackMethod"),
                machine_detection_timeout=seconds("MachineDetectionTimeout", 30, 3, 59),
                # Twilio: "any positive, whole integer" (error 21208), at most 600 seconds.
                timeout=whole("Timeout", 60, 1, 600, code=21208), time_limit=seconds("TimeLimit", 14400, 1, 86400),
                recording=recording)
    response = jsonify(call.to_json())  # as placed: queued
    response.status_code = 201
    engine().start(call)
    return response


def _twiml() -> str | None:
    twiml = request.form.get("Twiml")
    if twiml and len(twiml) > TWIML_LIMIT:
        raise TwilioError(400, 32018, f"Twiml size exceeded maximum allowed value of {TWIML_LIMIT} characters")
    return twiml


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
    return RecordingPlan("OutboundAPI", CHANNELS[channels], callback=url_param("RecordingStatusCallback"),
                         method=method_param("RecordingStatusCallbackMethod"), events=events or ("completed",))


@bp.get("/Calls.json")
def list_calls(account_sid: str) -> Any:
    """Calls newest first, filtered by To, From, Status, ParentCallSid and start/end dates."""
    args = request.args
    choice("Status", CALL_STATUSES)
    date_filters("StartTime", "EndTime")
    with state().lock:
        calls = list(state().calls.values())
    chosen = [call.to_json() for call in reversed(calls)
              if not any(args.get(param) and args[param] != value for param, value in
                         (("To", call.to), ("From", call.from_), ("Status", call.status),
                          ("ParentCallSid", call.parent_call_sid)))
              and by_date("StartTime", call.start_time) and by_date("EndTime", call.end_time)]
    return page("calls", chosen, "Calls.json")


@bp.get("/Calls/<sid>.json")
def fetch_call(account_sid: str, sid: str) -> Any:
    return jsonify(_call(sid).to_json())


@bp.post("/Calls/<sid>.json")
def update_call(account_sid: str, sid: str) -> Any:
    """Redirect a live call (Url or Twiml), cancel a queued or ringing one, or hang one up."""
    call, form = _call(sid), request.form
    url, twiml, status = url_param("Url"), _twiml(), choice("Status", ("canceled", "completed"), source=form)
    if (url or twiml) and call.ended:
        raise TwilioError(400, 21220, "Call is not in-progress. Cannot redirect.")
    if form.get("StatusCallback"):
        call.status_callback = url_param("StatusCallback")
        call.status_callback_method = method_param("StatusCallbackMethod")
    engine().update(call, url=url, method=method_param("Method"), twiml=twiml, status=status)
    if status and not call.ended:
        deadline = time.monotonic() + 2
        while not call.ended and time.monotonic() < deadline:
            time.sleep(0.01)
    return jsonify(call.to_json())


@bp.delete("/Calls/<sid>.json")
def delete_call(account_sid: str, sid: str) -> Any:
    """Delete an ended call's record; a live call is refused with 20009, as Twilio refuses it."""
    if not _call(sid).ended:
        raise TwilioError(400, 20009, "Cannot delete a call that is not completed")
    return remove(state().calls, sid)


@bp.get("/Calls/<call_sid>/Events.json")
def list_call_events(account_sid: str, call_sid: str) -> Any:
    """The requests the carrier sent the call's webhooks and what they answered, in Twilio's Call Event shape."""
    call = _call(call_sid)
    with state().lock:
        sent = list(call.webhooks)
    events = [{"request": {"method": hook.get("method"), "url": hook.get("url"),
                           "parameters": {_snake(k): v for k, v in (hook.get("params") or {}).items()}},
               "response": {"response_code": hook.get("status"), "request_duration": hook.get("ms"),
                            "content_type": hook.get("content_type"), "response_body": hook.get("body"),
                            "date_created": rfc2822(call.date_created)}}
              for hook in sent]
    return page("events", events, f"Calls/{call_sid}/Events.json")


def _snake(name: str) -> str:
    """CallStatus -> call_status: Twilio shows an event's parameters in snake case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# The fields of a notification in a list (Twilio's call_notification schema); one fetched alone shows the request
# and response behind it too (call_notification-instance).
LISTED = ("account_sid", "api_version", "call_sid", "date_created", "date_updated", "error_code", "log",
          "message_date", "message_text", "more_info", "request_method", "request_url", "sid", "uri")
ALONE = (*LISTED, "request_variables", "response_body", "response_headers")


def _notifications(calls: list[Call], account_level: bool = False, fields: tuple[str, ...] = LISTED
                   ) -> list[dict[str, Any]]:
    """The calls' debugger notifications, newest first, filtered by Log and MessageDate as Twilio filters them."""
    log = choice("Log", ("0", "1"))
    date_filters("MessageDate")
    with state().lock:
        found = [(call, note) for call in calls for note in call.notifications]
    shown = []
    for call, note in found:
        under = "" if account_level else f"Calls/{call.sid}/"
        full = {"account_sid": call.account_sid, "api_version": API_VERSION, "call_sid": call.sid, **note,
                "uri": f"/{API_VERSION}/Accounts/{call.account_sid}/{under}Notifications/{note.get('sid')}.json"}
        if (log is None or full.get("log") == log) and by_date("MessageDate", _when(full.get("message_date"))):
            shown.append({name: full.get(name) for name in fields})
    return sorted(shown, key=lambda n: _when(n.get("message_date")) or datetime.min, reverse=True)


def _when(value: str | None) -> datetime | None:
    return parsedate_to_datetime(value) if value else None


@bp.get("/Calls/<call_sid>/Notifications.json")
def list_call_notifications(account_sid: str, call_sid: str) -> Any:
    return page("notifications", _notifications([_call(call_sid)]), f"Calls/{call_sid}/Notifications.json")


@bp.get("/Calls/<call_sid>/Notifications/<sid>.json")
def fetch_call_notification(account_sid: str, call_sid: str, sid: str) -> Any:
    return jsonify(_one_notification(_notifications([_call(call_sid)], fields=ALONE), sid))


@bp.get("/Notifications.json")
def list_notifications(account_sid: str) -> Any:
    with state().lock:
        calls = list(state().calls.values())
    return page("notifications", _notifications(calls, account_level=True), "Notifications.json")


@bp.get("/Notifications/<sid>.json")
def fetch_notification(account_sid: str, sid: str) -> Any:
    with state().lock:
        calls = list(state().calls.values())
    return jsonify(_one_notification(_notifications(calls, account_level=True, fields=ALONE), sid))


def _one_notification(notes: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    found = next((n for n in notes if n.get("sid") == sid), None)
    if found is None:
        raise not_found()
    return found
