"""Reading a requested callback time: asap, ISO 8601, and words in the customer's zone; refusing the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callbacks.when import WhenError, parse_when

NY = ZoneInfo("America/New_York")
ZONE = "America/New_York"
NOW = datetime(2026, 3, 5, 16, 20, tzinfo=NY)   # Thursday 16:20 EST = 21:20 UTC


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


@pytest.mark.parametrize("text", ["asap", "ASAP", " Asap ", "now", "NOW", "right now", "as soon as possible"])
def test_as_soon_as_possible_is_none(text):
    assert parse_when(text, ZONE, NOW) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-03-06T15:00:00Z", datetime(2026, 3, 6, 15, tzinfo=UTC)),
    ("2026-03-06T15:00:00+01:00", datetime(2026, 3, 6, 14, tzinfo=UTC)),
    ("2026-03-06 15:00:00-08:00", datetime(2026, 3, 6, 23, tzinfo=UTC)),
    ("2026-03-06T15:00", ny(2026, 3, 6, 15)),          # no offset: the customer's zone
    ("2026-03-06T15:00:30.5", ny(2026, 3, 6, 15, 0, 30, 500000)),
])
def test_iso_8601(text, expected):
    found = parse_when(text, ZONE, NOW)
    assert found == expected
    assert found.tzinfo is UTC


def test_iso_without_offset_in_a_dst_gap_or_overlap():
    now = ny(2026, 3, 7, 12)
    # 02:30 doesn't exist on 2026-03-08: the first instant after the gap, 03:00 EDT.
    assert parse_when("2026-03-08T02:30", ZONE, now) == datetime(2026, 3, 8, 7, tzinfo=UTC)
    # 01:30 happens twice on 2026-11-01: the earlier one (EDT).
    assert parse_when("2026-11-01T01:30", ZONE, ny(2026, 10, 20)) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("tomorrow at 3pm", ny(2026, 3, 6, 15)),
    ("3pm tomorrow", ny(2026, 3, 6, 15)),
    ("Tomorrow 3:30 PM", ny(2026, 3, 6, 15, 30)),
    ("tomorrow", ny(2026, 3, 6, 16, 20)),               # a day without a time: this time of day, that day
    ("next monday 10am", ny(2026, 3, 9, 10)),           # after New York's DST change: 10:00 EDT
    ("monday at 10:30", ny(2026, 3, 9, 10, 30)),
    ("friday 9am", ny(2026, 3, 6, 9)),
    ("in 2 hours", ny(2026, 3, 5, 18, 20)),
    ("in 90 minutes", ny(2026, 3, 5, 17, 50)),
    ("next week", ny(2026, 3, 12, 16, 20)),            # same wall time a week on, across the DST change
    ("tonight", ny(2026, 3, 5, 20)),
    ("5pm", ny(2026, 3, 5, 17)),                        # a clock time still ahead today is today
    ("3pm", ny(2026, 3, 6, 15)),                        # a clock time already gone today is tomorrow
    ("at 10:30", ny(2026, 3, 6, 10, 30)),
    ("at 15", ny(2026, 3, 6, 15)),                      # 13-23 can only be the afternoon
    ("noon", ny(2026, 3, 6, 12)),
    ("midnight", ny(2026, 3, 6, 0)),
    ("monday", ny(2026, 3, 9, 0)),                      # a day alone: its start (the scheduler moves it on)
    ("march 10 at 9am", ny(2026, 3, 10, 9)),
    ("today", NOW),
    ("mañana a las 3pm", ny(2026, 3, 6, 15)),
    ("mañana a las 15:00", ny(2026, 3, 6, 15)),
    ("el lunes a las 10:00", ny(2026, 3, 9, 10)),
    ("en 2 horas", ny(2026, 3, 5, 18, 20)),
    ("demain à 15h", ny(2026, 3, 6, 15)),
    ("samedi 10h30", ny(2026, 3, 7, 10, 30)),
    ("dans 2 heures", ny(2026, 3, 5, 18, 20)),
])
def test_words(text, expected):
    found = parse_when(text, ZONE, NOW)
    assert found == expected
    assert found.tzinfo is UTC


def test_in_hours_is_exact_elapsed_time_across_a_dst_change():
    now = ny(2026, 3, 8, 1, 30)   # EST; at 02:00 the clocks jump to 03:00
    assert parse_when("in 2 hours", ZONE, now) == now.astimezone(UTC) + timedelta(hours=2)
    assert parse_when("in 2 hours", ZONE, now).astimezone(NY).hour == 4


def test_words_are_read_in_the_given_zone():
    tokyo = "Asia/Tokyo"
    found = parse_when("tomorrow at 9am", tokyo, NOW)   # NOW is 06:20 on the 6th in Tokyo
    assert found == datetime(2026, 3, 7, 9, tzinfo=ZoneInfo(tokyo))


@pytest.mark.parametrize(("text", "reason"), [
    ("", "couldn't read '' as a time"),
    ("   ", "couldn't read '' as a time"),
    ("1", "couldn't read '1' as a time"),
    ("12", "couldn't read '12' as a time"),
    ("a", "couldn't read 'a' as a time"),
    ("the 3", "couldn't read 'the 3' as a time"),
    ("3rd", "couldn't read '3rd' as a time"),
    ("blah", "couldn't read 'blah' as a time"),
    ("hotel 3pm", "couldn't read 'hotel 3pm' as a time"),
    ("31 February", "couldn't read '31 February' as a time"),
    ("2026-02-30T10:00", "couldn't read '2026-02-30T10:00' as a time"),
    ("at 24", "couldn't read 'at 24' as a time"),
    ("yesterday", "'yesterday' is in the past"),
    ("last week", "'last week' is in the past"),
    ("2 hours ago", "'2 hours ago' is in the past"),
    ("2026-03-05T15:00:00-05:00", "'2026-03-05T15:00:00-05:00' is in the past"),
    ("in 40 days", "'in 40 days' is beyond 30 days from now"),
    ("December 3", "'December 3' is beyond 30 days from now"),
])
def test_refused(text, reason):
    with pytest.raises(WhenError) as caught:
        parse_when(text, ZONE, NOW)
    assert caught.value.reason == reason
    assert str(caught.value) == reason
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("text", ["tomorrow at 3", "mañana a las 3", "monday at 10", "at three", "a las 7"])
def test_an_hour_that_could_be_morning_or_afternoon_is_refused_with_a_hint(text):
    with pytest.raises(WhenError, match="say AM or PM"):
        parse_when(text, ZONE, NOW)


def test_past_grace_is_sixty_seconds():
    assert parse_when("2026-03-05T16:19:00-05:00", ZONE, NOW) == ny(2026, 3, 5, 16, 19)
    with pytest.raises(WhenError, match="in the past"):
        parse_when("2026-03-05T16:18:59-05:00", ZONE, NOW)


def test_max_ahead():
    assert parse_when("in 3 days", ZONE, NOW, max_ahead=timedelta(days=3)) == ny(2026, 3, 8, 16, 20)
    with pytest.raises(WhenError, match="beyond 2 days"):
        parse_when("in 3 days", ZONE, NOW, max_ahead=timedelta(days=2))
    with pytest.raises(WhenError, match="beyond 1 day from now"):
        parse_when("in 3 days", ZONE, NOW, max_ahead=timedelta(days=1))
    with pytest.raises(WhenError, match="beyond 12 hours"):
        parse_when("tomorrow", ZONE, NOW, max_ahead=timedelta(hours=12))


def test_long_text_is_refused_and_echoed_short():
    with pytest.raises(WhenError, match="at most 100 characters"):
        parse_when("tomorrow " * 20, ZONE, NOW)
    with pytest.raises(WhenError) as caught:
        parse_when("x" * 90, ZONE, NOW)
    assert len(caught.value.reason) < 70


def test_naive_now_is_a_programming_error():
    with pytest.raises(ValueError, match="aware"):
        parse_when("tomorrow", ZONE, datetime(2026, 3, 5, 16, 20))


PIECES = st.sampled_from([*"0123456789 :/-.apmh", "at ", "tomorrow", "in ", "hours", "days", "monday", "noon",
                          "next ", "last ", "ago", "mañana", "a las ", "demain", "99999999", "week", "T", "Z"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.lists(PIECES, max_size=6).map("".join) | st.text(max_size=16))
def test_any_text_gives_none_an_instant_in_range_or_a_when_error(text):
    try:
        found = parse_when(text, ZONE, NOW)
    except WhenError as error:
        assert error.reason
        return
    if found is not None:
        assert found.tzinfo is UTC
        assert NOW - timedelta(seconds=60) <= found <= NOW + timedelta(days=30)
