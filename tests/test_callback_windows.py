"""Calling windows: the callee's local window and the number's hours, exact across DST and zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callbacks.windows import allowed, callee_zone, localize, next_allowed, next_slots, slots, speak_time
from directory.models import Number, NumberConfig

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
LONDON = ZoneInfo("Europe/London")
WEEKDAYS_9_17 = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
ZONES = ["America/New_York", "America/Los_Angeles", "America/St_Johns", "America/Sao_Paulo", "Europe/London",
         "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland",
         "Australia/Lord_Howe"]


def number(**changes: Any) -> Number:
    config = {"label": "US", "brand": "Acme", "time_zone": "America/New_York", **changes}
    return Number(**NumberConfig.model_validate(config).model_dump(), number="+14155550100",
                  updated_at=datetime(2026, 1, 1, tzinfo=UTC))


def at(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone, fold=fold)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- callee_zone -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("customer", "phone", "expected"), [
    ("Asia/Tokyo", "+14155550123", "Asia/Tokyo"),                 # the customer's own zone wins
    (None, "+14155550123", "America/Los_Angeles"),                # a 415 number has one zone
    (None, "+442079460958", "Europe/London"),                     # a London landline
    (None, "+447911123456", "Europe/London"),                     # UK mobile: London and its links, one clock
    (None, "+18005550123", "America/Chicago"),                    # toll-free lists dozens of zones: fall back
    (None, "+15555550100", "America/Chicago"),                    # phonenumbers says Etc/Unknown: fall back
    (None, "not a number", "America/Chicago"),
    ("Not/AZone", "+33142685300", "Europe/Paris"),                # an unknown customer zone is no zone at all
    ("", "+33142685300", "Europe/Paris"),
])
def test_callee_zone(customer, phone, expected):
    assert callee_zone(customer, phone, "America/Chicago") == expected


# --- localize ----------------------------------------------------------------------------------------------------


def test_localize_moves_a_wall_time_in_a_gap_to_the_end_of_the_gap_and_takes_the_earlier_of_two():
    assert localize(datetime(2026, 3, 8, 2, 30), "America/New_York") == utc(2026, 3, 8, 7)   # 03:00 EDT
    assert localize(datetime(2026, 3, 29, 1, 30), "Europe/London") == utc(2026, 3, 29, 1)    # 02:00 BST
    assert localize(datetime(2026, 11, 1, 1, 30), "America/New_York") == utc(2026, 11, 1, 5, 30)  # EDT, fold=0
    assert localize(datetime(2026, 10, 25, 1, 30), "Europe/London") == utc(2026, 10, 25, 0, 30)  # BST
    assert localize(datetime(2026, 7, 1, 12), "Asia/Kathmandu") == utc(2026, 7, 1, 6, 15)


# --- allowed -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("moment", "expected"), [
    (at(NY, 2026, 3, 6, 10, 59), False),   # 07:59 in LA: before the callee's window
    (at(NY, 2026, 3, 6, 11, 0), True),     # 08:00 in LA
    (at(NY, 2026, 3, 6, 16, 59), True),
    (at(NY, 2026, 3, 6, 17, 0), False),    # the number has closed
    (at(NY, 2026, 3, 7, 12, 0), False),    # Saturday: closed
])
def test_allowed_needs_the_callees_window_and_the_numbers_hours(moment, expected):
    assert allowed(moment, number(business_hours=WEEKDAYS_9_17), "America/Los_Angeles") is expected


def test_allowed_refuses_a_naive_moment():
    with pytest.raises(ValueError, match="aware"):
        allowed(datetime(2026, 3, 6, 12), number(), "America/New_York")


# --- next_allowed ------------------------------------------------------------------------------------------------


def test_the_number_opens_before_the_callee_may_be_rung():
    # New York opens at 9; Los Angeles may be rung from 08:00, which is 11:00 in New York.
    found = next_allowed(at(NY, 2026, 3, 6, 7, 0), number(business_hours=WEEKDAYS_9_17), "America/Los_Angeles")
    assert found == at(NY, 2026, 3, 6, 11, 0)
    assert found.tzinfo is UTC


def test_the_callee_may_be_rung_before_the_number_opens():
    # Callee in London: 08:00-21:00 there is 03:00-16:00 in New York (EST); the number opens at 9.
    found = next_allowed(at(NY, 2026, 1, 12, 2, 0), number(business_hours=WEEKDAYS_9_17), "Europe/London")
    assert found == at(NY, 2026, 1, 12, 9, 0)
    # After 16:00 New York it is 21:00 in London: the next chance is tomorrow at 09:00 New York.
    assert next_allowed(at(NY, 2026, 1, 12, 16, 0), number(business_hours=WEEKDAYS_9_17), "Europe/London") == \
        at(NY, 2026, 1, 13, 9, 0)


def test_an_allowed_moment_is_its_own_answer_to_the_microsecond():
    moment = at(NY, 2026, 3, 6, 12, 34, 56)
    assert next_allowed(moment, number(business_hours=WEEKDAYS_9_17), "America/New_York") == moment


def test_seconds_into_a_closed_minute_wait_for_the_next_minute():
    moment = at(NY, 2026, 3, 6, 7, 59, 30)
    assert next_allowed(moment, number(), "America/New_York") == at(NY, 2026, 3, 6, 8, 0)


def test_weekends_and_holidays_are_skipped():
    config = number(business_hours=WEEKDAYS_9_17, holidays=["2026-12-25"])
    # Thursday evening before a Friday holiday: the next time is Monday 09:00.
    assert next_allowed(at(NY, 2026, 12, 24, 18, 0), config, "America/New_York") == at(NY, 2026, 12, 28, 9, 0)


def test_always_open_number_only_needs_the_calling_window():
    config = number(business_hours=None)
    assert next_allowed(at(NY, 2026, 3, 6, 22, 0), config, "America/New_York") == at(NY, 2026, 3, 7, 8, 0)
    # 08:00 in New York is 22:00 in Tokyo; Tokyo's 08:00 is 18:00 in New York.
    assert next_allowed(at(NY, 2026, 3, 7, 8, 0), config, "Asia/Tokyo") == at(NY, 2026, 3, 7, 18, 0)


def test_an_always_open_number_reopens_at_midnight_after_a_holiday():
    config = number(business_hours=None, holidays=["2026-12-25"], calling_window={"start": "00:00", "end": "24:00"})
    assert next_allowed(at(NY, 2026, 12, 25, 10, 0), config, "America/New_York") == at(NY, 2026, 12, 26, 0, 0)


def test_a_window_that_can_never_be_satisfied_gives_none():
    # Open 09:00-10:00 New York; the callee's 08:00-09:00 in Tokyo is 18:00-20:00 in New York.
    config = number(business_hours={"mon": [["09:00", "10:00"]]}, calling_window={"start": "08:00", "end": "09:00"})
    assert next_allowed(at(NY, 2026, 3, 6, 12, 0), config, "Asia/Tokyo") is None
    # Every day a holiday for a fortnight, with a short horizon.
    days = [date(2026, 3, 6) + timedelta(days=n) for n in range(14)]
    assert next_allowed(at(NY, 2026, 3, 6, 12, 0), number(holidays=days), "America/New_York",
                        horizon=timedelta(days=10)) is None


def test_the_horizon_bounds_the_search():
    config = number(business_hours={"mon": [["09:00", "17:00"]]})
    moment = at(NY, 2026, 3, 10, 12, 0)   # Tuesday: next Monday is six days on
    assert next_allowed(moment, config, "America/New_York", horizon=timedelta(days=5)) is None
    assert next_allowed(moment, config, "America/New_York", horizon=timedelta(days=6)) == at(NY, 2026, 3, 16, 9, 0)


def test_spring_forward_new_york_window_start_inside_the_gap():
    # 02:30 does not exist on 2026-03-08 in New York: the window opens when the clocks jump to 03:00.
    config = number(calling_window={"start": "02:30", "end": "05:00"})
    found = next_allowed(at(NY, 2026, 3, 8, 0, 0), config, "America/New_York")
    assert found == utc(2026, 3, 8, 7, 0) == at(NY, 2026, 3, 8, 3, 0)


def test_spring_forward_new_york_business_hours_are_counted_in_wall_time():
    # 09:00 the day after the change is 13:00 UTC, not 14:00.
    config = number(business_hours=WEEKDAYS_9_17)
    assert next_allowed(at(NY, 2026, 3, 7, 12, 0), config, "America/New_York") == utc(2026, 3, 9, 13, 0)


def test_fall_back_new_york_the_repeated_hour_opens_twice():
    # 01:00-01:30 happens twice on 2026-11-01: after the first (EDT) closes, the second (EST) opens.
    config = number(calling_window={"start": "01:00", "end": "01:30"})
    assert next_allowed(at(NY, 2026, 11, 1, 0, 0), config, "America/New_York") == utc(2026, 11, 1, 5, 0)
    assert next_allowed(at(NY, 2026, 11, 1, 1, 40), config, "America/New_York") == utc(2026, 11, 1, 6, 0)


def test_fall_back_new_york_clock_jumping_back_into_the_window():
    # Window 00:30-01:30: at 02:00 EDT the clock reads 01:00 EST again, inside the window.
    config = number(calling_window={"start": "00:30", "end": "01:30"})
    assert next_allowed(at(NY, 2026, 11, 1, 1, 45), config, "America/New_York") == utc(2026, 11, 1, 6, 0)


def test_spring_forward_london():
    # 01:15 does not exist on 2026-03-29 in London; the clocks go from 01:00 GMT to 02:00 BST.
    config = number(time_zone="Europe/London", calling_window={"start": "01:15", "end": "03:00"})
    assert next_allowed(at(LONDON, 2026, 3, 29, 0, 30), config, "Europe/London") == utc(2026, 3, 29, 1, 0)


def test_fall_back_london_business_hours_in_the_repeated_hour():
    config = number(time_zone="Europe/London", business_hours={"sun": [["01:00", "01:30"]]},
                    calling_window={"start": "00:00", "end": "24:00"})
    # 01:45 BST (00:45 UTC): the next 01:00 is 01:00 GMT, an hour of real time later.
    assert next_allowed(utc(2026, 10, 25, 0, 45), config, "Europe/London") == utc(2026, 10, 25, 1, 0)


def test_callee_across_a_dst_change_the_number_does_not_have():
    # London changes on 2026-03-29, New York three weeks earlier. London window 08:00-21:00, NY always open.
    config = number(business_hours=None)
    assert next_allowed(utc(2026, 3, 28, 23, 0), config, "Europe/London") == utc(2026, 3, 29, 8, 0) - \
        timedelta(hours=1)   # 08:00 BST = 07:00 UTC


def test_next_allowed_refuses_a_naive_moment():
    with pytest.raises(ValueError, match="aware"):
        next_allowed(datetime(2026, 3, 6, 12), number(), "America/New_York")


# --- property: exact and minimal ---------------------------------------------------------------------------------

QUARTERS = [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 15, 30, 45)] + ["24:00"]


@st.composite
def ranges(draw: st.DrawFn) -> tuple[str, str]:
    start, end = sorted(draw(st.lists(st.sampled_from(QUARTERS), min_size=2, max_size=2, unique=True)))
    return start, end


@st.composite
def configs(draw: st.DrawFn) -> Number:
    window_start, window_end = draw(ranges())
    hours = None
    if draw(st.booleans()):
        days = draw(st.lists(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), unique=True))
        hours = {day: [list(draw(ranges()))] for day in days}
    holidays = draw(st.lists(st.dates(date(2026, 1, 1), date(2028, 2, 15)), max_size=3))
    return number(time_zone=draw(st.sampled_from(ZONES)), business_hours=hours, holidays=holidays,
                  calling_window={"start": window_start, "end": window_end})


MOMENTS = st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31, 23, 59), timezones=st.just(UTC))
GRID = timedelta(minutes=15)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(moment=MOMENTS, config=configs(), zone=st.sampled_from(ZONES))
def test_next_allowed_is_allowed_and_nothing_earlier_is(moment, config, zone):
    found = next_allowed(moment, config, zone)
    # Every zone in ZONES keeps a whole number of quarter hours from UTC, and every start is on a quarter hour, so
    # an allowed stretch begins at the moment itself, on the UTC quarter-hour grid, or at a DST change.
    first = moment + (-(moment - datetime(2026, 1, 1, tzinfo=UTC)) % GRID)
    end = found if found is not None else moment + timedelta(days=45)
    points = []
    point = first
    while point < end and len(points) < 300:
        points.append(point)
        point += GRID
    if found is not None:
        points += [found - GRID * n for n in range(1, 100) if found - GRID * n >= moment]
    assert not any(allowed(p, config, zone) for p in points if p < end)
    if found is None:
        return
    assert found >= moment
    assert found.tzinfo is UTC
    assert allowed(found, config, zone)
    assert found - moment <= timedelta(days=45)
    if found > moment:
        # It is where an allowed stretch begins: a microsecond before, it was not allowed.
        assert not allowed(found - timedelta(microseconds=1), config, zone)


# --- slots -------------------------------------------------------------------------------------------------------


def test_slots_on_a_day_in_the_customers_zone():
    config = number(business_hours=WEEKDAYS_9_17)
    found = slots(date(2026, 3, 6), "America/Los_Angeles", config, "America/Los_Angeles", now=utc(2026, 3, 1))
    # LA 08:00-21:00 and NY 09:00-17:00 overlap in LA from 08:00 to 14:00.
    assert [s.astimezone(LA).strftime("%H:%M") for s in found] == [
        "08:00", "08:30", "09:00", "09:30", "10:00", "10:30", "11:00", "11:30", "12:00", "12:30", "13:00", "13:30"]
    assert all(s.tzinfo is UTC for s in found)


def test_slots_are_after_now_limited_and_stepped():
    config = number()
    now = at(NY, 2026, 3, 6, 12, 10)
    found = slots(date(2026, 3, 6), "America/New_York", config, "America/New_York", now=now,
                  step=timedelta(hours=1), limit=3)
    assert found == [at(NY, 2026, 3, 6, 13), at(NY, 2026, 3, 6, 14), at(NY, 2026, 3, 6, 15)]
    assert slots(date(2026, 3, 5), "America/New_York", config, "America/New_York", now=now) == []


def test_slots_on_dst_days():
    config = number(calling_window={"start": "00:00", "end": "24:00"})
    spring = slots(date(2026, 3, 8), "America/New_York", config, "America/New_York", now=utc(2026, 3, 1))
    assert len(spring) == 46   # 02:00 and 02:30 never show on a clock
    assert [s.astimezone(NY).strftime("%H:%M") for s in spring[3:6]] == ["01:30", "03:00", "03:30"]
    autumn = slots(date(2026, 11, 1), "America/New_York", config, "America/New_York", now=utc(2026, 10, 1),
                   limit=100)
    assert len(autumn) == 50   # 01:00 and 01:30 happen twice
    assert autumn[2:6] == [utc(2026, 11, 1, 5), utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6), utc(2026, 11, 1, 6, 30)]


# --- next_slots --------------------------------------------------------------------------------------------------


def test_next_slots_cross_the_weekend():
    config = number(business_hours=WEEKDAYS_9_17)
    found = next_slots(at(NY, 2026, 3, 6, 16, 10), config, "America/New_York")   # Friday
    assert found == [at(NY, 2026, 3, 6, 16, 30), at(NY, 2026, 3, 9, 9, 0), at(NY, 2026, 3, 9, 9, 30)]
    assert all(s.tzinfo is UTC for s in found)


def test_next_slots_are_strictly_after_and_on_the_callees_grid():
    config = number(business_hours=WEEKDAYS_9_17)
    # Kolkata (UTC+5:30) 08:00-21:00 is 21:30-10:30 in New York (EST) and 22:30-11:30 after New York's DST change
    # on 2026-03-08, so the number's 09:00-17:00 leaves 09:00-10:30, then 09:00-11:30 the next week.
    found = next_slots(at(NY, 2026, 3, 6, 9, 0), config, "Asia/Kolkata", count=4)
    assert [s.astimezone(NY).strftime("%a %H:%M") for s in found] == ["Fri 09:30", "Fri 10:00", "Mon 09:00",
                                                                     "Mon 09:30"]
    # Kolkata's :00 and :30 are New York's :30 and :00.
    assert [s.astimezone(ZoneInfo("Asia/Kolkata")).strftime("%H:%M") for s in found] == ["20:00", "20:30",
                                                                                          "18:30", "19:00"]
    found = next_slots(at(NY, 2026, 3, 9, 11, 0), config, "Asia/Kolkata", count=2)
    assert [s.astimezone(NY).strftime("%a %H:%M") for s in found] == ["Tue 09:00", "Tue 09:30"]


def test_next_slots_none_when_never_allowed():
    config = number(business_hours={"mon": [["09:00", "10:00"]]}, calling_window={"start": "08:00", "end": "09:00"})
    assert next_slots(at(NY, 2026, 3, 6, 12), config, "Asia/Tokyo") == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(after=MOMENTS, config=configs(), zone=st.sampled_from(ZONES))
def test_next_slots_are_allowed_grid_points_in_order(after, config, zone):
    found = next_slots(after, config, zone, count=3)
    assert found == sorted(set(found))
    assert len(found) <= 3
    for slot in found:
        assert slot > after
        assert allowed(slot, config, zone)
        local = slot.astimezone(ZoneInfo(zone))
        assert local.minute % 30 == 0 and local.second == 0 and local.microsecond == 0
    if found:
        assert next_allowed(after, config, zone) is not None


# --- speak_time --------------------------------------------------------------------------------------------------

NOW = at(NY, 2026, 11, 26, 14, 0)   # Thursday


@pytest.mark.parametrize(("moment", "spoken"), [
    (at(NY, 2026, 11, 26, 15, 0), "today at 3 PM"),
    (at(NY, 2026, 11, 27, 9, 30), "tomorrow at 9:30 AM"),
    (at(NY, 2026, 11, 30, 10, 0), "Monday at 10 AM"),
    (at(NY, 2026, 12, 2, 12, 0), "Wednesday at 12 PM"),   # six days on: still a weekday
    (at(NY, 2026, 12, 3, 10, 0), "December 3 at 10 AM"),  # seven days on: a date
    (at(NY, 2026, 11, 27, 0, 5), "tomorrow at 12:05 AM"),
    (utc(2026, 11, 27, 3, 0), "today at 10 PM"),          # already the 27th in UTC, still the 26th in New York
])
def test_speak_time(moment, spoken):
    assert speak_time(moment, "America/New_York", NOW) == spoken


def test_speak_time_uses_the_callees_zone_for_both_day_and_clock():
    # NOW is 04:00 on the 27th in Tokyo, so noon there on the 27th is today, and the 28th is tomorrow.
    assert speak_time(utc(2026, 11, 27, 3, 0), "Asia/Tokyo", NOW) == "today at 12 PM"
    assert speak_time(utc(2026, 11, 28, 3, 0), "Asia/Tokyo", NOW) == "tomorrow at 12 PM"
