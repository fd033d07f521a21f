"""Who is calling, as Twilio tells a call's webhooks: where its numbers are (From/To/Caller/Called City, State, Zip
and Country) and, from a number with caller-name lookup on, the caller's name."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import geocoder

from carrier.state import Call, IncomingNumber, PhoneScript

PARTS = ("City", "State", "Zip", "Country")


@lru_cache(maxsize=1024)
def place(address: str) -> tuple[str, str, str, str] | None:
    """(city, state, zip, country) of a phone number as far as phonenumbers knows; None for a client address."""
    if not address.startswith("+"):
        return None
    try:
        number = phonenumbers.parse(address, None)
    except phonenumbers.NumberParseException:
        return "", "", "", ""
    country = phonenumbers.region_code_for_number(number) or ""
    described = geocoder.description_for_number(number, "en") if country else ""
    city, comma, state = described.partition(", ")  # NANP: "San Francisco, CA"; elsewhere a city or a region
    if number.country_code == 1 and not comma:
        city = ""  # a NANP number placed only by its state or province: Twilio names no city for it
    if city == geocoder.country_name_for_number(number, "en"):
        city = ""
    # phonenumbers knows no postal codes: Zip goes out empty, as Twilio sends what its own lookup lacks.
    return city.upper(), state, "", country


def location_params(call: Call) -> dict[str, str]:
    """The geographic parameters of the call's webhooks (From* and Caller* alike, To* and Called* alike), and
    CallerName when the number that took the call looks caller names up."""
    params: dict[str, str] = {}
    for address, roles in ((call.from_, ("From", "Caller")), (call.to, ("To", "Called"))):
        where = place(address)
        if where is None:
            continue
        for role in roles:
            params.update({f"{role}{part}": value for part, value in zip(PARTS, where, strict=True)})
    if call.caller_name is not None:
        params["CallerName"] = call.caller_name
    return params


def caller_name(number: IncomingNumber, caller: PhoneScript) -> str | None:
    """What the number's caller-name lookup (VoiceCallerIdLookup) finds for an inbound call: the calling phone's
    label, or an empty name when it has none; None (no CallerName at all) when the number does not look names up."""
    if not number.voice_caller_id_lookup:
        return None
    return caller.label or ""
