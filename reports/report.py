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
    """The report of numbers, each over its own how_many days up to its today: where their zones are on different
    dates, the days of all of them together run one longer, and no number loses a day."""
    counted = {n.number: counters.days(n.number, local_day(n.time_zone, now), how_many) for n in numbers}
    days = sorted({day for per_number in counted.values() for day in per_number}) or [local_day("UTC", now)]
    rows = [(day, n, Figures(counted[n.number][day])) for day in days for n in numbers if day in counted[n.number]]
    per_day = [Figures(total(counted[n.number].get(day, {}) for n in numbers)) for day in days]
    by_number = [(n, Figures(total(counted[n.number].values()))) for n in numbers]
    return Report(days, per_day, by_number, rows, Figures(total(f.counts for f in per_day)))
