"""Calling windows: when a callee may be rung (their local window, the number's hours), exact across DST."""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as phone_timezones

from context.schemas import real_time_zones
from directory.models import DAYS, Number

HORIZON = timedelta(days=45)
STEP = timedelta(minutes=30)
_DAY = timedelta(days=1)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
# Zones that agree on their UTC offset at noon UTC every day of these years are one zone for calling purposes.
_SAME_ZONE_YEARS = (2020, 2040)
# phonenumbers lists UK mobiles under London and the Crown dependencies that keep its clock; name the one people know.
_PREFERRED = ("Europe/London",)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


@lru_cache(maxsize=256)
def _one_zone(names: tuple[str, ...]) -> str | None:
    """The zone names stand for when they all keep the same clock (UK mobiles list London and its links), else None."""
    if len(names) == 1:
        return names[0]
    zones = [ZoneInfo(name) for name in names]
    moment = datetime(_SAME_ZONE_YEARS[0], 1, 1, 12, tzinfo=UTC)
    end = datetime(_SAME_ZONE_YEARS[1], 12, 31, 12, tzinfo=UTC)
    while moment <= end:
        offsets = {moment.astimezone(zone).utcoffset() for zone in zones}
        if len(offsets) > 1:
            return None
        moment += _DAY
    return next((name for name in _PREFERRED if name in names), names[0])


def callee_zone(customer_time_zone: str | None, phone_e164: str, number_zone: str) -> str:
    """The zone whose clock the callee lives by: theirs, else their phone number's single zone, else the number's."""
    if customer_time_zone and customer_time_zone in real_time_zones():
        return customer_time_zone
    try:
        parsed = phonenumbers.parse(phone_e164, None)
    except phonenumbers.NumberParseException:
        return number_zone
    # phonenumbers answers "Etc/Unknown" for numbers it can't place; a toll-free +1 800 lists dozens of zones.
    names = tuple(sorted(name for name in phone_timezones.time_zones_for_number(parsed)
                         if name in real_time_zones()))
    if not names:
        return number_zone
    return _one_zone(names) or number_zone


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("moment must be timezone-aware")
    return moment.astimezone(UTC)


def _offset(instant: datetime, zone: ZoneInfo) -> timedelta:
    return instant.astimezone(zone).utcoffset() or timedelta(0)


def _first_change(low: datetime, high: datetime, zone: ZoneInfo) -> datetime:
    """The first instant after low, up to high, where zone's UTC offset differs from its offset at low."""
    # Offsets change on whole seconds, so search whole POSIX seconds.
    lo, hi = math.floor(low.timestamp()), math.ceil(high.timestamp())
    start = _offset(datetime.fromtimestamp(lo, UTC), zone)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(datetime.fromtimestamp(mid, UTC), zone) == start:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)


def _instants(wall: datetime, zone: ZoneInfo, gap: str = "after") -> list[datetime]:
    """The UTC instants a naive wall time names in zone: one, or two on a fall-back (earlier first)."""
    # A wall time in a spring-forward gap names no instant: gap="after" takes the first one after the gap (where
    # the clock first shows a later time), gap="skip" none.
    earlier = wall.replace(tzinfo=zone, fold=0)
    later = wall.replace(tzinfo=zone, fold=1)
    first, second = earlier.astimezone(UTC), later.astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) != wall:
        # In a gap fold=0 reads the wall with the old offset and lands after the jump; fold=1 lands before it.
        return [_first_change(second, first, zone)] if gap == "after" else []
    return [first] if first == second else [first, second]


def localize(wall: datetime, zone: str) -> datetime:
    """A naive wall time in zone as a UTC instant: the earlier one when ambiguous, the end of a DST gap when absent."""
    return _instants(wall.replace(tzinfo=None), ZoneInfo(zone))[0]


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return _instants(datetime.combine(day, time()), zone)[0]


def _transitions(day: date, zone: ZoneInfo) -> list[datetime]:
    """The UTC instant zone changes offset during local day, if it does (at most one per day in practice)."""
    start, end = _day_start(day, zone), _day_start(day + _DAY, zone)
    if _offset(start, zone) == _offset(end, zone):
        return []
    return [_first_change(start, end, zone)]


def _openings(day: date, number: Number, callee: ZoneInfo, office: ZoneInfo) -> list[datetime]:
    """Every instant of local day (in either zone) at which allowed() can turn true."""
    # allowed() is "callee's wall clock in the window" and "number's wall clock in a range of a non-holiday day",
    # so it can only turn true where one of those clocks reaches a start (both readings of an ambiguous time), a
    # day begins (holidays, always-open numbers) or a clock jumps (DST changes: falling back into a window).
    midnight = datetime.combine(day, time())
    found = [*_instants(midnight + timedelta(minutes=_minutes(number.calling_window.start)), callee),
             _day_start(day, callee), _day_start(day, office), *_transitions(day, callee), *_transitions(day, office)]
    if number.business_hours is not None and day not in number.holidays:
        for start, _ in getattr(number.business_hours, DAYS[day.weekday()]):
            found += _instants(midnight + timedelta(minutes=_minutes(start)), office)
    return found


def allowed(moment: datetime, number: Number, zone: str) -> bool:
    """Whether moment is inside the callee's calling window (their local time) and the number is open then."""
    local = _aware(moment).astimezone(ZoneInfo(zone))
    minute = local.hour * 60 + local.minute
    window = number.calling_window
    return _minutes(window.start) <= minute < _minutes(window.end) and number.is_open(moment)


def next_allowed(moment: datetime, number: Number, zone: str, horizon: timedelta = HORIZON) -> datetime | None:
    """The earliest UTC instant >= moment that is allowed, or None when none comes within horizon."""
    start = _aware(moment)
    if allowed(start, number, zone):
        return start
    limit = start + horizon
    callee, office = ZoneInfo(zone), ZoneInfo(number.time_zone)
    day = min(start.astimezone(callee).date(), start.astimezone(office).date())
    # Candidates are UTC datetimes: aware datetimes sharing one ZoneInfo compare by wall time, ignoring fold.
    pending: list[datetime] = []
    while True:
        for candidate in _openings(day, number, callee, office):
            if start < candidate <= limit:
                heapq.heappush(pending, candidate)
        day += _DAY
        # Every candidate of a later local day is at or after that day's start in its zone, so anything earlier
        # than both zones' next day start is final and can be tried in order.
        bound = min(_day_start(day, callee), _day_start(day, office))
        while pending and pending[0] < bound:
            candidate = heapq.heappop(pending)
            if allowed(candidate, number, zone):
                return candidate
        if bound > limit:
            return None


def _grid(day: date, zone: ZoneInfo, step: timedelta) -> list[datetime]:
    """Slot starts of local day in UTC and in order: wall times every step from midnight."""
    # Both readings of an ambiguous wall time are slots; one in a DST gap never shows on a clock, so isn't.
    if step <= timedelta(0):
        raise ValueError("step must be positive")
    midnight = datetime.combine(day, time())
    found: list[datetime] = []
    wall = midnight
    while wall.date() == day:
        found += _instants(wall, zone, gap="skip")
        wall += step
    return sorted(found)


def _grid_from(start: datetime, zone: ZoneInfo, step: timedelta) -> Iterator[datetime]:
    day = start.astimezone(zone).date()
    while True:
        for slot in _grid(day, zone, step):
            if slot >= start:
                yield slot
        day += _DAY


def slots(day: date, customer_zone: str, number: Number, zone: str, now: datetime, step: timedelta = STEP,
          limit: int = 48) -> list[datetime]:
    """Bookable UTC slot starts on day in the customer's zone: every step from local midnight, allowed, after now."""
    current = _aware(now)
    found: list[datetime] = []
    for slot in _grid(day, ZoneInfo(customer_zone), step):
        if len(found) >= limit:
            break
        if slot > current and allowed(slot, number, zone):
            found.append(slot)
    return found


def next_slots(after: datetime, number: Number, zone: str, count: int = 3, step: timedelta = STEP,
               horizon: timedelta = HORIZON) -> list[datetime]:
    """The next count allowed UTC slot starts strictly after after, on the step grid of the callee's zone."""
    start = _aware(after)
    limit = start + horizon
    callee = ZoneInfo(zone)
    found: list[datetime] = []
    grid = _grid_from(start + timedelta(microseconds=1), callee, step)
    while len(found) < count:
        slot = next(grid)
        if slot > limit:
            break
        if allowed(slot, number, zone):
            found.append(slot)
            continue
        # Jump over closed stretches (nights, weekends, holidays) rather than testing every grid point in them.
        opening = next_allowed(slot, number, zone, horizon=limit - slot)
        if opening is None:
            break
        grid = _grid_from(opening, callee, step)
    return found


def _clock(local: datetime) -> str:
    hour = local.hour % 12 or 12
    suffix = "AM" if local.hour < 12 else "PM"
    return f"{hour} {suffix}" if local.minute == 0 else f"{hour}:{local.minute:02d} {suffix}"


def speak_time(moment: datetime, zone: str, now: datetime) -> str:
    """English words for moment in zone, relative to now: "today at 3 PM", "Monday at 10 AM", "December 3 at 9 AM"."""
    tz = ZoneInfo(zone)
    local = _aware(moment).astimezone(tz)
    days = (local.date() - _aware(now).astimezone(tz).date()).days
    if days == 0:
        day = "today"
    elif days == 1:
        day = "tomorrow"
    elif 2 <= days <= 6:
        day = _WEEKDAYS[local.weekday()]
    else:
        day = f"{_MONTHS[local.month - 1]} {local.day}"
    return f"{day} at {_clock(local)}"
