"""Support numbers: opening hours in their own time zone (DST too), holidays, languages, validation."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from core import keys
from directory.models import Number, NumberConfig

NY = ZoneInfo("America/New_York")
WEEKDAYS = {day: [["09:00", "12:00"], ["13:00", "17:30"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def number(**changes) -> Number:
    config = {"label": "US", "brand": "Acme", "time_zone": "America/New_York", "business_hours": WEEKDAYS,
              "holidays": ["2026-12-25"], **changes}
    return Number(**NumberConfig.model_validate(config).model_dump(), number="+14155550100",
                  updated_at=datetime.now(UTC))


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


@pytest.mark.parametrize(("moment", "open_"), [
    (local(2026, 11, 23, 10, 0), True),      # Monday morning
    (local(2026, 11, 23, 12, 30), False),    # lunch
    (local(2026, 11, 23, 17, 29), True),
    (local(2026, 11, 23, 17, 30), False),
    (local(2026, 11, 28, 11, 0), False),     # Saturday: not listed, closed
    (local(2026, 12, 25, 10, 0), False),     # holiday
    (local(2026, 3, 9, 9, 30), True),        # the Monday after DST began
    (datetime(2026, 3, 9, 13, 30, tzinfo=UTC), True),   # 09:30 EDT
    (datetime(2026, 1, 12, 13, 30, tzinfo=UTC), False),  # 08:30 EST
])
def test_opening_hours_are_read_in_the_numbers_zone(moment, open_):
    assert number().is_open(moment) is open_


def test_no_business_hours_means_always_open_but_holidays_still_close():
    always = number(business_hours=None)
    assert always.is_open(local(2026, 11, 28, 3, 0))
    assert not always.is_open(local(2026, 12, 25, 12, 0))


def test_the_customers_locale_is_used_when_offered():
    offering = number(language="en-US", languages=["es-US", "fr-CA"])
    assert offering.language_for("es-MX") == "es-US"
    assert offering.language_for("fr_CA") == "fr-CA"
    assert offering.language_for("de-DE") == "en-US"
    assert offering.language_for(None) == "en-US"
    assert offering.speech_voice("es-US") == "Polly.Lupe"
    assert number(voice="Polly.Salli").speech_voice("en-US") == "Polly.Salli"


@pytest.mark.parametrize(("change", "field"), [
    ({"business_hours": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}}, "business_hours.mon"),
    ({"business_hours": {"mon": [["17:00", "09:00"]]}}, "business_hours.mon.0"),
    ({"business_hours": {"mon": [["9am", "5pm"]]}}, "business_hours.mon.0.0"),
    ({"business_hours": {"funday": []}}, "business_hours.funday"),
    ({"time_zone": "Atlantis/Capital"}, "time_zone"),
    ({"time_zone": "localtime"}, "time_zone"),
    ({"time_zone": "Factory"}, "time_zone"),
    ({"time_zone": "posixrules"}, "time_zone"),
    ({"time_zone": "right/UTC"}, "time_zone"),
    ({"time_zone": "posix/UTC"}, "time_zone"),
    ({"language": "xx-XX"}, "language"),
    ({"calling_window": {"start": "21:00", "end": "08:00"}}, "calling_window"),
    ({"retry_minutes": []}, "retry_minutes"),
    ({"caller_id": "12"}, "caller_id"),
])
def test_invalid_configuration_names_the_field(change, field):
    with pytest.raises(ValidationError) as refused:
        number(**change)
    assert ".".join(str(p) for p in refused.value.errors()[0]["loc"]) == field


def test_a_call_code_lives_fifteen_minutes_and_works_once(app, redis_client):
    codes = app.extensions["threadline.callcodes"]
    code, expires = codes.issue("t-1")
    assert len(code) == 6 and code.isdigit()
    assert 895 <= redis_client.ttl(keys.call_code(code)) <= 900
    assert 14 * 60 < (expires - datetime.now(UTC)).total_seconds() <= 15 * 60
    assert codes.redeem(code) == "t-1"
    assert codes.redeem(code) is None
    assert codes.redeem("12ab56") is None
