"""An admin desk with two support numbers in different zones, and a month of their counters seeded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask

from directory.models import NumberConfig
from reports.counters import Count
from tests.support.admin import SUPPORT, admin_desk

SVG = "{http://www.w3.org/2000/svg}"
OTHER = "+14155550200"  # a second support number, labelled like a spreadsheet formula (in the same zone as SUPPORT,
# so the seeded days line up whatever the hour the tests run at)


def reports(app: Flask) -> Any:
    return app.extensions["threadline.reports"]


def reports_desk(make_app: Any) -> Flask:
    """admin_desk's app with OTHER configured too."""
    app = admin_desk(make_app)
    app.extensions["threadline.numbers"].put(OTHER, NumberConfig(
        label='=HYPERLINK("http://evil")', brand="Acme", time_zone="America/New_York"), datetime.now(UTC))
    return app


def seed(app: Flask, days: int = 30) -> None:
    """A month of calls and callbacks on both numbers: day d (days ago) has d + 1 calls in on SUPPORT, and so on."""
    counters, now = reports(app), datetime.now(UTC)
    for back in range(days):
        at = now - timedelta(days=back)
        counters.count(SUPPORT, {Count.calls_in: back + 1, Count.matched: back, Count.answered: back // 2 + 1,
                                 Count.voicemails: back % 3, Count.callbacks_requested: 2,
                                 Count.callbacks_first_attempt: 1, Count.callbacks_exhausted: back % 2,
                                 Count.ratings: 2, Count.rating_sum: 4 + back % 5}, at=at)
        counters.count(OTHER, {Count.calls_in: 1, Count.callbacks_requested: 1}, at=at)
        for seconds in (0.1, 0.4, 0.8, 3.0):
            counters.count_lateness(SUPPORT, seconds + back / 100, once=(f"cb-{back}-{seconds}", "attempt 1"), at=at)
