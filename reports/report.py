"""A report: the last days of one support number or of all of them, from the daily counters (a round trip a
number)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from directory.models import Number
from reports.counters import DailyCounters, local_day
from reports.figures import Figures, total

PERIODS = (7, 30)  # the days a report may cover


@dataclass(frozen=True)
class Report:
    """The figures of a period: per day (the numbers chosen, added up), per number, and in all."""

    days: list[date]
    per_day: list[Figures]
    by_number: list[tuple[Number, Figures]]
    rows: list[tuple[date, Number, Figures]]  # one per day and number, oldest first
    total: Figures


def read(counters: DailyCounters, numbers: Sequence[Number], how_many: int, now: datetime) -> Report:
    """The report of numbers over the how_many days up to today (the latest today among their zones)."""
    last = max((local_day(number.time_zone, now) for number in numbers), default=local_day("UTC", now))
    counted = {number.number: counters.days(number.number, last, how_many) for number in numbers}
    days = sorted({day for per_number in counted.values() for day in per_number}) or [last]
    rows = [(day, number, Figures(counted[number.number][day])) for day in days for number in numbers]
    per_day = [Figures(total(counted[n.number][day] for n in numbers)) for day in days]
    by_number = [(n, Figures(total(counted[n.number].values()))) for n in numbers]
    return Report(days, per_day, by_number, rows, Figures(total(f.counts for f in per_day)))
