"""Phone numbers: E.164 normalisation and the region a locale implies."""

from __future__ import annotations

import re

import phonenumbers

_REGION_SUBTAG = re.compile(r"^[A-Za-z]{2}$")


def region_of_locale(locale: str | None) -> str | None:
    """Return the ISO region of a BCP 47 locale ('en-US' -> 'US'), or None when it names none."""
    if not locale:
        return None
    for subtag in re.split(r"[-_]", locale)[1:]:
        if _REGION_SUBTAG.match(subtag):
            return subtag.upper()
    return None


_CALLABLE = frozenset({phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE,
                       phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE})


def callable_person(e164: str, countries: frozenset[str]) -> str | None:
    """Why Threadline will not call e164 for a customer (None: it may): only a mobile or fixed line of one of
    countries, never premium-rate, shared-cost, toll-free or another kind of service."""
    number = phonenumbers.parse(e164)
    region = phonenumbers.region_code_for_number(number)
    if region not in countries:
        return f"{e164} is in {region or 'no country'}, not in {', '.join(sorted(countries))}"
    if phonenumbers.number_type(number) not in _CALLABLE:
        return f"{e164} is not a mobile or fixed line (premium-rate, shared-cost and toll-free numbers are not called)"
    return None


def country_of(e164: str) -> str | None:
    """The ISO country of an E.164 number."""
    return phonenumbers.region_code_for_number(phonenumbers.parse(e164))


def to_e164(raw: str, region: str | None = None) -> str:
    """Normalise raw to E.164, reading a national number in region; ValueError says why it is refused."""
    text = raw.strip()
    if not text:
        raise ValueError("a phone number is required")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            hint = f"in region {region}" if region else "without a region: use the +country form"
            raise ValueError(f"cannot read {text!r} as a phone number {hint}") from None
        raise ValueError(f"{text!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{text!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
