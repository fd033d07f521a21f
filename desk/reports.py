"""The admins' reports page: the last 7 or 30 days of one support number or all, as charts drawn on the server and as
CSV, from the daily counters (reports/)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Response, request
from markupsafe import Markup

from desk import bp, words
from desk.admin import admin_page, admin_required
from directory.models import Number
from directory.service import DIRECTORY
from reports.charts import Series, bar_chart
from reports.counters import REPORTS, Count
from reports.figures import CSV_COLUMNS, Figures, csv_row
from reports.report import PERIODS, Report, read

ALL = ""  # the number field's value for every number added up


class Refused(ValueError):
    """A request's field that cannot be answered: its name and what is wrong, in words."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def _every() -> list[Number]:
    """Every support number, in the order the page lists them."""
    return sorted(DIRECTORY.get().numbers.all(), key=lambda n: n.number)


def _choice(every: list[Number]) -> tuple[int, list[Number], str]:
    """The period (days) and the numbers of every asked for, with the chosen number's value; Refused naming the
    field."""
    raw_days = request.args.get("days", str(PERIODS[0]))
    if raw_days not in {str(p) for p in PERIODS}:
        raise Refused("days", f"Days: choose {' or '.join(str(p) for p in PERIODS)}.")
    numbers = every
    # A number typed into the address bar loses its + (a space there): it is put back.
    chosen = request.args.get("number", ALL).strip()
    if chosen and not chosen.startswith("+"):
        chosen = f"+{chosen}"
    if chosen != ALL:
        numbers = [n for n in numbers if n.number == chosen]
        if not numbers:
            raise Refused("number", "Number: that is not one of the support numbers.")
    return int(raw_days), numbers, chosen


@dataclass(frozen=True)
class Chart:
    """A chart as the page shows it: its heading, its SVG, and the same figures as a table (for screen readers and
    for reading exact values)."""

    title: str
    svg: Markup
    columns: list[str]
    rows: list[tuple[str, list[str]]]


def _charts(report: Report) -> list[Chart]:
    """Each chart of the report."""
    labels = [words.short_day(day) for day in report.days]

    def each(value: Callable[[Figures], float | None]) -> list[float | None]:
        return [value(figures) for figures in report.per_day]

    def chart(ident: str, title: str, series: list[Series], say: Callable[[float], str] = lambda v: f"{v:g}",
              **drawing: Any) -> Chart:
        def cell(value: float | None) -> str:
            return words.NOTHING if value is None else say(value)

        rows = [(label, [cell(line.values[d]) for line in series]) for d, label in enumerate(labels)]
        return Chart(title, bar_chart(ident, title, labels, series, say=say, **drawing), [s.name for s in series],
                     rows)

    return [
        chart("calls", "Calls in each day", [
            Series("Calls in", each(lambda f: f[Count.calls_in]), "#1f3b57"),
            Series("Matched to a conversation", each(lambda f: f[Count.matched]), "#3a7bd5"),
            Series("Answered by an agent", each(lambda f: f[Count.answered]), "#2e7d32"),
            Series("Voicemails", each(lambda f: f[Count.voicemails]), "#b58a00")]),
        chart("callbacks", "Callbacks each day", [
            Series("Requested", each(lambda f: f[Count.callbacks_requested]), "#1f3b57"),
            Series("Done on the first attempt", each(lambda f: f[Count.callbacks_first_attempt]), "#2e7d32"),
            Series("Ran out of attempts", each(lambda f: f[Count.callbacks_exhausted]), "#a33a3a")]),
        chart("lateness", "How late callbacks were dialled", [
            Series("Median", each(lambda f: f.lateness_median), "#3a7bd5"),
            Series("95 in 100 within", each(lambda f: f.lateness_p95), "#1f3b57")], say=words.lateness),
        chart("ratings", "Average rating by customers", [
            Series("Average rating", each(lambda f: f.average_rating), "#6a4c93")], say=_rating, top=5),
    ]


def _rating(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0") + " of 5"


def _of(count: int, share: float | None) -> str:
    """A count with its share when there is one: 21 (75%)."""
    return f"{count} ({words.share(share)})" if share is not None else str(count)


def summary(figures: Figures) -> list[tuple[str, str]]:
    """A period's figures as the page lists them."""
    ratings = words.count(figures[Count.ratings], "rating")
    return [
        ("Calls in", str(figures[Count.calls_in])),
        ("Matched to a conversation", _of(figures[Count.matched], figures.matched_share)),
        ("Answered by an agent", _of(figures[Count.answered], figures.answered_share)),
        ("Voicemails", str(figures[Count.voicemails])),
        ("Callbacks requested", str(figures[Count.callbacks_requested])),
        ("Callbacks done on the first attempt",
         _of(figures[Count.callbacks_first_attempt], figures.first_attempt_share)),
        ("Callbacks that ran out of attempts", str(figures[Count.callbacks_exhausted])),
        ("Median callback lateness", words.lateness(figures.lateness_median)),
        ("95 in 100 callbacks dialled within", words.lateness(figures.lateness_p95)),
        ("Average rating", f"{words.rating(figures.average_rating)} ({ratings})" if figures[Count.ratings]
         else "no rating yet"),
    ]


@bp.get("/admin/reports")
@admin_required
def admin_reports() -> Any:
    """The charts and figures of the chosen period and numbers."""
    every = _every()
    try:
        days, numbers, chosen = _choice(every)
    except Refused as refused:
        return admin_page("desk/admin_reports.html", 400, error=refused, every=every, periods=PERIODS,
                     days=PERIODS[0], chosen=ALL)
    report = read(REPORTS.get(), numbers, days, datetime.now(UTC))
    return admin_page("desk/admin_reports.html", report=report, charts=_charts(report), summary=summary(report.total),
                 by_number=[(n, summary(f)) for n, f in report.by_number], every=every, periods=PERIODS,
                 days=days, chosen=chosen, first=words.short_day(report.days[0]),
                 last=words.short_day(report.days[-1]))


@bp.get("/admin/reports.csv")
@admin_required
def admin_reports_csv() -> Any:
    """The same figures as CSV: a row per day and number, then each number's period, then all of them."""
    try:
        days, numbers, _ = _choice(_every())
    except Refused as refused:
        return Response(refused.message + "\n", 400, mimetype="text/plain")
    report = read(REPORTS.get(), numbers, days, datetime.now(UTC))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Day", "Number", "Label", *(heading for heading, _ in CSV_COLUMNS)])
    for day, number, figures in report.rows:
        writer.writerow([day.isoformat(), number.number, _cell(number.label), *csv_row(figures)])
    period = f"last {days} days"
    for number, figures in report.by_number:
        writer.writerow([period, number.number, _cell(number.label), *csv_row(figures)])
    if len(report.by_number) > 1:
        writer.writerow([period, "all numbers", "", *csv_row(report.total)])
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="threadline-report-{days}-days.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _cell(text: str) -> str:
    """A label as a spreadsheet cell: never read as a formula (an admin typed it)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
