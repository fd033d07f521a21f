"""DailyCounters: per support number and day of its own zone, what happened, counted once per call or callback."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import redis

from core import keys
from core.extensions import Shared
from directory.models import Number
from directory.store import NumberStore

log = logging.getLogger(__name__)

DAY_TTL = 400 * 24 * 3600  # s a day's counters are kept: a year and a month of history for the reports
MARK_TTL = 2 * 24 * 3600  # s a "counted already" mark is kept: Twilio's retries and our jobs' come well within it
ZONE_TTL = 300.0  # s a process trusts the zone it read for a number (a changed zone moves counts a day at most)


class Count(StrEnum):
    """What is counted per number and day (the hash's fields)."""

    calls_in = "calls_in"
    matched = "matched"  # a call in linked to the caller's conversation (caller ID confirmed, chosen, or a call code)
    answered = "answered"  # a call in an agent took
    voicemails = "voicemails"
    callbacks_requested = "callbacks_requested"
    callbacks_first_attempt = "callbacks_first_attempt"  # completed on their first attempt
    callbacks_exhausted = "callbacks_exhausted"
    ratings = "ratings"
    rating_sum = "rating_sum"


# Upper bounds (s) of the dial lateness buckets: fine below a second, where the dialler aims to be, coarse above.
LATENESS_BOUNDS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


def lateness_field(bound: float | None) -> str:
    """The counter of the lateness bucket with that upper bound (None: above the last)."""
    return f"late:{bound:g}" if bound is not None else "late:more"


def lateness_bucket(seconds: float) -> str:
    return lateness_field(next((bound for bound in LATENESS_BOUNDS if seconds <= bound), None))


# A Lua function: add pairs ({field, by, ...}) to the day's hash, unless member is in the subject's mark set already
# (mark '' counts always). 1 when counted.
COUNT_ONCE = f"""
local function count_once(day, mark, member, pairs)
  if mark ~= '' then
    if redis.call('SADD', mark, member) == 0 then return 0 end
    redis.call('EXPIRE', mark, {MARK_TTL})
  end
  for i = 1, #pairs, 2 do redis.call('HINCRBY', day, pairs[i], pairs[i + 1]) end
  redis.call('EXPIRE', day, {DAY_TTL})
  return 1
end
"""

# KEYS: the day's hash, the subject's mark set (or none). ARGV: mark member, then field/increment pairs.
_COUNT = COUNT_ONCE + "return count_once(KEYS[1], KEYS[2] or '', ARGV[1], {unpack(ARGV, 2)})"


def local_day(zone: str, at: datetime) -> date:
    return at.astimezone(ZoneInfo(zone)).date()


def day_key(number: str, zone: str, at: datetime) -> str:
    """The key of number's counters for the day at falls on in its zone."""
    return keys.report_day(number, local_day(zone, at).isoformat())


class DailyCounters:
    """Counters per support number and local day, in Redis for DAY_TTL; one round trip a count."""

    def __init__(self, redis_client: redis.Redis, numbers: NumberStore) -> None:
        self.redis, self.numbers = redis_client, numbers
        self._count = redis_client.register_script(_COUNT)
        self._zones: dict[str, tuple[str, float]] = {}

    def zone(self, number: str) -> str:
        """The number's time zone as this process last read it (UTC for a number no longer configured)."""
        cached = self._zones.get(number)
        if cached is not None and time.monotonic() - cached[1] <= ZONE_TTL:
            return cached[0]
        found = self.numbers.get(number)
        zone = found.time_zone if found else "UTC"
        self._zones[number] = (zone, time.monotonic())
        return zone

    def count(self, number: Number | str, counts: Mapping[str, int], *, once: tuple[str, str] | None = None,
              at: datetime | None = None) -> bool:
        """Add counts to number's day (now, or at); once=(subject, what) counts only the first time for that pair.
        False when it was counted already, or could not be: a report is never worth failing a call or a job for,
        so a failure is logged and the work goes on."""
        e164 = number.number if isinstance(number, Number) else number
        try:
            zone = number.time_zone if isinstance(number, Number) else self.zone(number)
            day = day_key(e164, zone, at or datetime.now(UTC))
            marks = [keys.reported(once[0])] if once else []
            pairs = [item for field, by in counts.items() for item in (field, by)]
            return bool(self._count(keys=[day, *marks], args=[once[1] if once else "", *pairs]))
        except Exception as exc:  # any failure: the count is lost, the caller's work is not
            log.warning("not counted in the reports: %s for %s (%s: %s)", ", ".join(counts), once[0] if once else
                        "-", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            return False

    def count_lateness(self, number: Number | str, seconds: float, *, once: tuple[str, str],
                       at: datetime | None = None) -> bool:
        """One callback attempt placed seconds after it was due (now, or at)."""
        return self.count(number, {lateness_bucket(max(0.0, seconds)): 1}, once=once, at=at)

    def days(self, number: str, last: date, how_many: int) -> dict[date, dict[str, int]]:
        """The counters of number's how_many days up to last (its zone's dates), oldest first; days without any are
        empty."""
        wanted = [last - timedelta(days=back) for back in range(how_many - 1, -1, -1)]
        with self.redis.pipeline(transaction=False) as pipe:
            for day in wanted:
                pipe.hgetall(keys.report_day(number, day.isoformat()))
            found = pipe.execute()
        return {day: {name: int(value) for name, value in counts.items()}
                for day, counts in zip(wanted, found, strict=True)}


REPORTS: Shared[DailyCounters] = Shared("reports")
