"""Reports: daily counters per number kept by the flows themselves, counted once, and the admins' page that draws
them (SVG charts without JavaScript) and gives the same figures as CSV."""

from __future__ import annotations

import csv
import io
import math
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from callbacks.schemas import State
from desk import words
from directory.models import NumberConfig
from reports.charts import Series, axis, bar_chart
from reports.counters import DAY_TTL, Count, DailyCounters, lateness_bucket, lateness_field
from reports.figures import Figures, percentile
from reports.report import read
from tests.support.admin import HOSTILE, SUPPORT
from tests.support.callbacks import ask, work
from tests.support.carrier import AGENT, CUSTOMER, OUTLASTS_AGENT, TALK, wait_until
from tests.support.desk import HTML, sign_in
from tests.support.reports import OTHER, SVG, reports, reports_desk, seed
from tests.support.voice import ALWAYS, Line

PARIS = "+33142685300"


@pytest.fixture
def app(make_app: Any) -> Flask:
    return reports_desk(make_app)


# --- figures and charts, pure ---------------------------------------------------------------------------------------


def test_lateness_percentiles_are_interpolated_inside_their_bucket() -> None:
    counts = {lateness_bucket(0.1): 50, lateness_bucket(0.7): 40, lateness_bucket(4.0): 10}
    assert percentile(counts, 0.5) == pytest.approx(0.25)  # the 50th of 100 closes the first bucket (up to 0.25 s)
    assert percentile(counts, 0.95) == pytest.approx(2.0 + 3.0 * 5 / 10)  # halfway into 2-5 s
    assert percentile({}, 0.5) is None
    assert math.isinf(percentile({lateness_field(None): 3}, 0.5) or 0)
    assert words.lateness(0.4) == "0.4 s"
    assert (words.lateness(None), words.lateness(math.inf), words.lateness(125)) == (
        "none", "more than an hour", "2 min")


def test_figures_give_shares_and_the_average_rating() -> None:
    figures = Figures({Count.calls_in: 8, Count.matched: 6, Count.answered: 4, Count.ratings: 3, Count.rating_sum: 13})
    assert (figures.matched_share, figures.answered_share) == (0.75, 0.5)
    assert figures.average_rating == pytest.approx(13 / 3) and figures.first_attempt_share is None
    assert (words.share(figures.matched_share), words.rating(figures.average_rating)) == ("75%", "4.3 out of 5")


def test_a_chart_is_svg_with_a_titled_bar_per_value_and_escaped_words() -> None:
    svg = bar_chart("c", "Calls <b>", ["Mon 1 Dec", "Tue 2 Dec"], [
        Series(HOSTILE, [3, None], "#123456"), Series("Answered", [1, 7], "#654321")])
    root = ET.fromstring(str(svg))
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.find(f"{SVG}title").text == "Calls <b>"
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert [b.find(f"{SVG}title").text for b in bars] == [
        f"Mon 1 Dec: {HOSTILE} 3", "Mon 1 Dec: Answered 1", "Tue 2 Dec: Answered 7"]
    heights = [float(b.get("height")) for b in bars]
    assert heights[2] > heights[0] > heights[1] > 0  # 7 > 3 > 1, on one axis
    assert "Answered: highest on Tue 2 Dec, 7." in root.find(f"{SVG}desc").text
    assert [axis(v) for v in (0, 3, 7, 31, 4.4, 260)] == [(1, 1), (3, 1), (8, 2), (40, 10), (6, 2), (300, 100)]
    assert axis(3.2, top=5) == (5, 1)  # a rating's axis: 0 to 5 whatever the ratings
    assert (axis(2), axis(2, whole=True)) == ((2, 0.5), (2, 1))  # counts go up in whole steps


# --- the counters ---------------------------------------------------------------------------------------------------


def test_a_count_with_a_subject_is_counted_once_on_the_numbers_own_day(app: Flask) -> None:
    counters = reports(app)
    late_evening = datetime(2026, 11, 3, 3, 30, tzinfo=UTC)  # 10:30 PM on 2 Nov in New York
    assert counters.count(SUPPORT, {Count.calls_in: 1}, once=("CA1", Count.calls_in), at=late_evening)
    assert not counters.count(SUPPORT, {Count.calls_in: 1}, once=("CA1", Count.calls_in), at=late_evening)
    assert counters.count(SUPPORT, {Count.matched: 1}, once=("CA1", Count.matched), at=late_evening)
    days = counters.days(SUPPORT, date(2026, 11, 3), 2)
    assert days == {date(2026, 11, 2): {Count.calls_in: 1, Count.matched: 1}, date(2026, 11, 3): {}}


def test_all_numbers_keep_each_numbers_own_days_across_zones(app: Flask) -> None:
    numbers = app.extensions["threadline.numbers"]
    paris, _ = numbers.put(PARIS, NumberConfig(label="Paris", brand="Acme", time_zone="Europe/Paris"),
                           datetime.now(UTC))
    new_york = numbers.get(SUPPORT)
    now = datetime(2026, 11, 10, 23, 30, tzinfo=UTC)  # 6:30 PM on the 10th in New York, past midnight in Paris
    reports(app).count(SUPPORT, {Count.calls_in: 1}, at=now - timedelta(days=6))  # New York's oldest day of 7
    reports(app).count(PARIS, {Count.calls_in: 2}, at=now)  # Paris's 11th
    alone, both = read(reports(app), [new_york], 7, now), read(reports(app), [new_york, paris], 7, now)
    assert alone.total[Count.calls_in] == 1 and both.by_number[0][1][Count.calls_in] == 1
    assert both.total[Count.calls_in] == 3 and (both.days[0], both.days[-1]) == (date(2026, 11, 4), date(2026, 11, 11))
    assert len({(day, n.number) for day, n, _ in both.rows}) == 14  # each number's own seven days


def test_a_count_that_cannot_be_made_is_logged_and_changes_nothing(app: Flask, caplog: pytest.LogCaptureFixture,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    unreachable = DailyCounters(redis.Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.5),
                                app.extensions["threadline.numbers"])
    assert unreachable.count(app.extensions["threadline.numbers"].get(SUPPORT), {Count.calls_in: 1}) is False
    assert "not counted in the reports: calls_in" in caplog.text
    monkeypatch.setattr("time.monotonic", lambda: 12.0)  # a machine booted seconds ago: nothing cached is stale yet
    assert reports(app).count(SUPPORT, {Count.calls_in: 1}) is True


def test_a_days_counters_are_kept_400_days(app: Flask, redis_client: Any) -> None:
    reports(app).count(SUPPORT, {Count.calls_in: 1})
    [key] = [k for k in redis_client.scan_iter(count=1000) if redis_client.type(k) == "hash"
             and redis_client.hget(k, Count.calls_in) == "1"]
    assert DAY_TTL - 60 < redis_client.ttl(key) <= DAY_TTL == 400 * 24 * 3600


# --- the page and the CSV -------------------------------------------------------------------------------------------


def csv_rows(admin: FlaskClient, **query: str) -> list[dict[str, str]]:
    response = admin.get("/desk/admin/reports.csv", query_string=query)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def figures_on_page(page: str) -> dict[str, str]:
    """The period's figures as the page lists them (name -> words)."""
    block = page.split('<dl class="figures">', 1)[1].split("</dl>", 1)[0]
    names = [part.split("</dt>")[0] for part in block.split("<dt>")[1:]]
    values = [part.split("</dd>")[0] for part in block.split("<dd>")[1:]]
    return dict(zip(names, values, strict=True))


def test_the_page_draws_four_charts_and_its_figures_match_the_csv(app: Flask, admin: FlaskClient) -> None:
    seed(app)
    response = admin.get("/desk/admin/reports?days=30", headers=HTML)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;" in page  # a label as text
    figures_html = page.split('<figure class="card chart-card">')[1:]
    charts = [ET.fromstring(part.split("</figcaption>", 1)[1].split("</svg>")[0] + "</svg>") for part in figures_html]
    assert [c.find(f"{SVG}title").text for c in charts] == [
        "Calls in each day", "Callbacks each day", "How late callbacks were dialled", "Average rating by customers"]
    calls_bars = [r for r in charts[0].iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(calls_bars) == 30 * 4  # four series a day, a day without voicemails titled with its 0
    assert sum(b.find(f"{SVG}title").text.endswith("Voicemails 0") for b in calls_bars) == 10
    shown = figures_on_page(page)
    rows = csv_rows(admin, days="30")
    assert len(rows) == 30 * 2 + 2 + 1  # a row per day and number, each number's month, all of them
    everything = rows[-1]
    assert everything["Day"] == "last 30 days" and everything["Number"] == "all numbers"
    assert shown["Calls in"] == everything["Calls in"] == str(sum(b + 1 for b in range(30)) + 30)
    assert shown["Matched to a conversation"] == f"{everything['Matched to a conversation']} " \
                                                 f"({round(float(everything['Matched (%)']))}%)"
    assert shown["Callbacks requested"] == everything["Callbacks requested"] == str(30 * 3)
    assert shown["Callbacks that ran out of attempts"] == everything["Callbacks that ran out of attempts"] == "15"
    median = float(everything["Median callback lateness (seconds)"])
    assert shown["Median callback lateness"] == f"{median:.1f} s"
    assert shown["Average rating"].startswith(f"{float(everything['Average rating (1 to 5)']):.1f} out of 5")
    per_day = [r for r in rows if r["Number"] == SUPPORT and r["Day"] != "last 30 days"]
    assert sum(int(r["Calls in"]) for r in per_day) == sum(b + 1 for b in range(30))
    # The calls chart's table by day says what the CSV's rows of that day add up to.
    table = re.findall(r'<tr><th scope="row">([^<]+)</th><td>(\d+)</td>', figures_html[0])
    assert len(table) == 30
    by_day: dict[str, int] = {}
    for row in rows[:-3]:
        by_day[row["Day"]] = by_day.get(row["Day"], 0) + int(row["Calls in"])
    assert [int(calls) for _, calls in table] == [by_day[day] for day in sorted(by_day)]
    assert table[-1][0] == words.short_day(date.fromisoformat(max(by_day)))
    assert next(r["Label"] for r in rows if r["Number"] == OTHER).startswith("'=")  # never a spreadsheet formula


def test_seven_days_of_one_number(app: Flask, admin: FlaskClient) -> None:
    seed(app)
    page = admin.get(f"/desk/admin/reports?days=7&number={SUPPORT.replace('+', '%2B')}", headers=HTML)
    assert page.status_code == 200
    assert figures_on_page(page.get_data(as_text=True))["Calls in"] == str(sum(b + 1 for b in range(7)))
    rows = csv_rows(admin, days="7", number=SUPPORT)
    assert {r["Number"] for r in rows} == {SUPPORT} and len(rows) == 7 + 1  # its days, then its week
    assert rows[6]["Calls in"] == "1" and rows[0]["Calls in"] == "7"  # oldest first: today had one call


@pytest.mark.parametrize(("query", "field"), [({"days": "9"}, "Days"), ({"number": "+19995550000"}, "Number")])
def test_a_bad_choice_is_named_and_refused(admin: FlaskClient, query: dict[str, str], field: str) -> None:
    page = admin.get("/desk/admin/reports", query_string=query, headers=HTML)
    assert page.status_code == 400 and f"{field}: " in page.get_data(as_text=True)
    refused = admin.get("/desk/admin/reports.csv", query_string=query)
    assert refused.status_code == 400 and refused.get_data(as_text=True).startswith(f"{field}: ")


def test_only_admins_see_reports(client: FlaskClient) -> None:
    assert client.get("/desk/admin/reports", headers=HTML).status_code in (302, 303)
    assert sign_in(client, agent_id="sam").status_code == 303
    assert client.get("/desk/admin/reports", headers=HTML).status_code == 403
    assert client.get("/desk/admin/reports.csv").status_code == 403


# --- counted by the flows themselves, through the carrier ---------------------------------------------------------


def today_of(line: Line) -> Figures:
    number = line.app.extensions["threadline.numbers"].get(SUPPORT)
    return read(reports(line.app), [number], 7, datetime.now(UTC)).total


def test_a_call_in_matched_answered_and_rated_4_is_counted(line: Line) -> None:
    line.number(survey=True)
    line.thread("t-1")
    line.script(CUSTOMER, keys=["1", "4"], hangup_after=4000)
    line.script(AGENT, keys=["1"], hangup_after=TALK)
    line.finished(line.call_in(CUSTOMER))
    figures = wait_until(lambda: (f := today_of(line))[Count.ratings] and f, message="the rating counted")
    assert {c: figures[c] for c in (Count.calls_in, Count.matched, Count.answered, Count.voicemails)} == {
        Count.calls_in: 1, Count.matched: 1, Count.answered: 1, Count.voicemails: 0}
    assert figures.average_rating == 4.0


def test_a_voicemail_is_counted_and_an_unmatched_call_is_not_matched(line: Line) -> None:
    line.agent("sam", name="Sam Lee", phone=AGENT, status="away")
    line.agent("lee", name="Lee Park", phone="+14155550778", status="offline")
    line.thread("t-1")
    line.script(CUSTOMER, keys=["2", "", ""], record_seconds=4)  # not this conversation, no code: the general line
    line.finished(line.call_in(CUSTOMER))
    figures = wait_until(lambda: (f := today_of(line))[Count.voicemails] and f, message="the voicemail counted")
    assert (figures[Count.calls_in], figures[Count.matched], figures[Count.answered]) == (1, 0, 0)


def test_callbacks_done_first_time_and_out_of_attempts_are_counted_with_their_lateness(cb_line: Line) -> None:
    cb_line.number(calling_window=ALWAYS, max_attempts=1)
    cb_line.script(CUSTOMER, keys=["1"], hangup_after=OUTLASTS_AGENT)
    cb_line.script(AGENT, keys=["1"], hangup_after=TALK)
    done = ask(cb_line).get_json()
    work(cb_line)
    store = cb_line.app.extensions["threadline.callbacks"]
    wait_until(lambda: store.get(done["id"]).state == State.completed, message="the first callback done")
    wait_until(lambda: today_of(cb_line)[Count.callbacks_first_attempt], message="done first time counted")
    cb_line.script(CUSTOMER, answer="busy")
    tried = ask(cb_line).get_json()  # the first one is done: the conversation may ask again
    work(cb_line)
    wait_until(lambda: store.get(tried["id"]).state == State.exhausted, message="out of attempts")
    # Counted just after the change is written (by the web thread that took the status callback): wait for it.
    figures = wait_until(lambda: (f := today_of(cb_line))[Count.callbacks_exhausted] and f,
                         message="out of attempts counted")
    assert (figures[Count.callbacks_requested], figures[Count.callbacks_first_attempt],
            figures[Count.callbacks_exhausted]) == (2, 1, 1)
    # A callback's call is no call in: not in the calls' figures, though it was whispered and bridged like one.
    assert (figures[Count.calls_in], figures[Count.matched], figures[Count.answered]) == (0, 0, 0)
    assert figures.lateness_median is not None and figures.lateness_median < 60  # dialled as soon as asked
