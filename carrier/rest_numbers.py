"""The IncomingPhoneNumbers and Keys resources of Twilio's 2010-04-01 REST API."""

from __future__ import annotations

import re
import secrets
from typing import Any

from flask import jsonify, request

from carrier.rest import TwilioError, bp, lookup, method_param, page, remove, state, url_param
from carrier.state import ROUTES, ApiKey, IncomingNumber, new_sid, utcnow


def _sid(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"^{prefix}[0-9a-fA-F]{{32}}$")


# Updatable fields of an IncomingPhoneNumber that the carrier keeps and shows but does not act on (it carries no
# SMS, no emergency calls, no fax), by parameter: the values each takes, as Twilio's OpenAPI document lists them.
KEPT: dict[str, Any] = {
    "SmsUrl": "url", "SmsFallbackUrl": "url", "SmsMethod": "method", "SmsFallbackMethod": "method",
    "SmsApplicationSid": _sid("AP"), "EmergencyAddressSid": _sid("AD"), "AddressSid": _sid("AD"),
    "IdentitySid": _sid("RI"), "BundleSid": _sid("BU"), "EmergencyStatus": ("Active", "Inactive"),
    "VoiceReceiveMode": ("voice", "fax"), "ApiVersion": ("2010-04-01", "2008-08-01"),
}
VOICE_URLS = {"VoiceUrl": "voice_url", "VoiceFallbackUrl": "voice_fallback_url", "StatusCallback": "status_callback"}
VOICE_METHODS = {"VoiceMethod": "voice_method", "VoiceFallbackMethod": "voice_fallback_method",
                 "StatusCallbackMethod": "status_callback_method"}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _number(sid: str) -> IncomingNumber:
    return lookup(state().numbers, sid)


@bp.get("/IncomingPhoneNumbers.json")
def list_numbers(account_sid: str) -> Any:
    args = request.args
    with state().lock:
        numbers = [n.to_json() for n in state().numbers.values()
                   if (not args.get("PhoneNumber") or n.phone_number == args["PhoneNumber"])
                   and (not args.get("FriendlyName") or n.friendly_name == args["FriendlyName"])]
    return page("incoming_phone_numbers", numbers, "IncomingPhoneNumbers.json")


@bp.delete("/IncomingPhoneNumbers/<sid>.json")
def delete_number(account_sid: str, sid: str) -> Any:
    """Release the number: it leaves the account, and calls to it reach nobody."""
    return remove(state().numbers, sid)


def _kept(form: Any) -> dict[str, Any]:
    """The kept fields the form sets, checked against the values Twilio allows (an empty value clears one)."""
    settings: dict[str, Any] = {}
    for param, allowed in KEPT.items():
        if param not in form:
            continue
        value = form[param].strip()
        if allowed == "url":
            value = url_param(param)
        elif allowed == "method":
            value = method_param(param)
        elif value and isinstance(allowed, tuple) and value not in allowed:
            raise TwilioError(400, 20001, f"{param} must be one of {', '.join(allowed)}, not {value!r}")
        elif value and isinstance(allowed, re.Pattern) and not allowed.match(value):
            raise TwilioError(400, 20001, f"{param} is not valid: {value}")
        settings[_snake(param)] = value or None
    return settings


@bp.get("/IncomingPhoneNumbers/<sid>.json")
def fetch_number(account_sid: str, sid: str) -> Any:
    return jsonify(_number(sid).to_json())


@bp.post("/IncomingPhoneNumbers/<sid>.json")
def update_number(account_sid: str, sid: str) -> Any:
    """Change any field Twilio lets an update change: where the number's calls go (VoiceUrl and its method and
    fallback, StatusCallback, VoiceApplicationSid or TrunkSid: an empty SID detaches), its FriendlyName, caller-name
    lookup, and the fields the carrier keeps without acting on them (SMS, emergency, address, bundle...)."""
    number, form = _number(sid), request.form
    if form.get("AccountSid") and form["AccountSid"] != account_sid:
        raise TwilioError(400, 20001, "The local carrier has one account: a number cannot move to another")
    routes: dict[str, str] = {}
    for param, attribute, code in (("VoiceApplicationSid", "voice_application_sid", 21218),
                                   ("TrunkSid", "trunk_sid", 20001)):
        if param in form:
            routes[attribute] = form[param].strip()
            if routes[attribute] and not ROUTES[attribute].match(routes[attribute]):
                raise TwilioError(400, code, f"{param} is not valid: {routes[attribute]}")
    if all(routes.get(attribute) for attribute in ROUTES):
        raise TwilioError(400, 20001, "A number takes either a VoiceApplicationSid or a TrunkSid, not both")
    updates: dict[str, Any] = {attribute: url_param(param) for param, attribute in VOICE_URLS.items() if param in form}
    updates.update({attribute: method_param(param) for param, attribute in VOICE_METHODS.items() if param in form})
    if "FriendlyName" in form:
        updates["friendly_name"] = form["FriendlyName"][:64]
    if "VoiceCallerIdLookup" in form:
        lookup_on = form["VoiceCallerIdLookup"].lower()
        if lookup_on not in ("true", "false"):
            raise TwilioError(400, 20001, "VoiceCallerIdLookup must be true or false")
        updates["voice_caller_id_lookup"] = lookup_on == "true"
    settings = _kept(form)
    with state().lock:
        for attribute, value in updates.items():
            setattr(number, attribute, value)
        for attribute, value in routes.items():
            number.set_route(attribute, value)
        number.settings.update(settings)
        number.date_updated = utcnow()
    return jsonify(number.to_json())


@bp.post("/Keys.json")
def create_key(account_sid: str) -> Any:
    """A new Standard API key; its secret is shown this once, as Twilio shows it."""
    key = ApiKey(new_sid("SK"), (request.form.get("FriendlyName") or "")[:64], secrets.token_urlsafe(24))
    with state().lock:
        state().keys[key.sid] = key
    response = jsonify(key.to_json(with_secret=True))
    response.status_code = 201
    return response


@bp.get("/Keys.json")
def list_keys(account_sid: str) -> Any:
    with state().lock:
        keys = [key.to_json() for key in state().keys.values()]
    return page("keys", keys, "Keys.json")


@bp.get("/Keys/<sid>.json")
def fetch_key(account_sid: str, sid: str) -> Any:
    return jsonify(lookup(state().keys, sid).to_json())


@bp.post("/Keys/<sid>.json")
def update_key(account_sid: str, sid: str) -> Any:
    key = lookup(state().keys, sid)
    with state().lock:
        if "FriendlyName" in request.form:
            key.friendly_name = request.form["FriendlyName"][:64]
        key.date_updated = utcnow()
    return jsonify(key.to_json())


@bp.delete("/Keys/<sid>.json")
def delete_key(account_sid: str, sid: str) -> Any:
    """Revoke the key: its SID and secret authenticate no more."""
    return remove(state().keys, sid)
