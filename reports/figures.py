"""The report's figures from daily counters: totals, shares, lateness percentiles from the buckets, average rating;
pure, no Redis."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from reports.counters import LATENESS_BOUNDS, Count, lateness_field


def total(days: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """The counters of several days (or numbers) added up."""
    summed: dict[str, int] = {}
    for counts in days:
        for name, value in counts.items():
            summed[name] = summed.get(name, 0) + value
    return summed


def percentile(counts: Mapping[str, int], share: float) -> float | None:
    """The lateness (s) below which share of the attempts fell, interpolated inside its bucket as Prometheus does;
    math.inf when it lies above the last bound; None without attempts."""
    buckets = [(bound, counts.get(lateness_field(bound), 0)) for bound in LATENESS_BOUNDS]
    buckets.append((math.inf, counts.get(lateness_field(None), 0)))
    seen = sum(n for _, n in buckets)
    if not seen:
        return None
    rank, below, lower = share * seen, 0, 0.0
    for bound, n in buckets:
        if n and below + n >= rank:
            return bound if math.isinf(bound) else lower + (bound - lower) * (rank - below) / n
        below, lower = below + n, bound
    return math.inf


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Figures:
    """What the report says of a period (or one day) of one number or all of them."""

    counts: Mapping[str, int] = field(default_factory=dict)

    def __getitem__(self, name: Count) -> int:
        return self.counts.get(name, 0)

    @property
    def matched_share(self) -> float | None:
        return _share(self[Count.matched], self[Count.calls_in])

    @property
    def answered_share(self) -> float | None:
        return _share(self[Count.answered], self[Count.calls_in])

    @property
    def first_attempt_share(self) -> float | None:
        return _share(self[Count.callbacks_first_attempt], self[Count.callbacks_requested])

    @property
    def lateness_median(self) -> float | None:
        return percentile(self.counts, 0.5)

    @property
    def lateness_p95(self) -> float | None:
        return percentile(self.counts, 0.95)

    @property
    def average_rating(self) -> float | None:
        return self[Count.rating_sum] / self[Count.ratings] if self[Count.ratings] else None


# The CSV's columns: heading, and the figure as text (counts whole, shares in %, seconds to one decimal).
def _number(value: float | None, scale: float = 1.0, digits: int = 1) -> str:
    if value is None:
        return ""
    return "more than 3600" if math.isinf(value) else f"{value * scale:.{digits}f}"


CSV_COLUMNS: tuple[tuple[str, Callable[[Figures], str]], ...] = (
    ("Calls in", lambda f: str(f[Count.calls_in])),
    ("Matched to a conversation", lambda f: str(f[Count.matched])),
    ("Matched (%)", lambda f: _number(f.matched_share, 100)),
    ("Answered by an agent", lambda f: str(f[Count.answered])),
    ("Voicemails", lambda f: str(f[Count.voicemails])),
    ("Callbacks requested", lambda f: str(f[Count.callbacks_requested])),
    ("Callbacks completed on the first attempt", lambda f: str(f[Count.callbacks_first_attempt])),
    ("Callbacks that ran out of attempts", lambda f: str(f[Count.callbacks_exhausted])),
    ("Median callback lateness (seconds)", lambda f: _number(f.lateness_median)),
    ("95th percentile callback lateness (seconds)", lambda f: _number(f.lateness_p95)),
    ("Ratings", lambda f: str(f[Count.ratings])),
    ("Average rating (1 to 5)", lambda f: _number(f.average_rating, digits=2)),
)


def csv_row(figures: Figures) -> list[str]:
    return [value(figures) for _, value in CSV_COLUMNS]
