"""The reports page in Chromium: an admin reads a month of seeded figures as four charts, switches to one number's
last 7 days without any script, and finds no machine words nor serious accessibility problem; screenshots in
test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.admin import SUPPORT
from tests.support.browser import ARTIFACTS, LAPTOP
from tests.support.carrier import Served
from tests.support.desk import PASSWORD
from tests.support.pages import assert_in_words, described, violations
from tests.support.reports import reports_desk, seed

CHARTS = ["Calls in each day", "Callbacks each day", "How late callbacks were dialled", "Average rating by customers"]


@pytest.fixture
def served(make_app: Any) -> Iterator[str]:
    """The admin desk with a month of figures, over HTTP: its base URL."""
    app = reports_desk(make_app)
    seed(app)
    server = Served(app)
    yield server.url
    server.stop()


def signed_in(browser: Browser, base: str, **context: Any) -> Page:
    page = browser.new_context(viewport=LAPTOP, bypass_csp=True, **context).new_page()
    page.goto(f"{base}/desk/login")
    page.get_by_label("Agent id").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return page


def test_an_admin_reads_a_month_as_charts_then_one_numbers_week(served: str, browser: Browser) -> None:
    page = signed_in(browser, served)
    page.goto(f"{served}/desk/admin/")
    page.get_by_role("link", name="Reports").click()
    page.get_by_label("Period").select_option(label="Last 30 days")
    page.get_by_role("button", name="Show").click()
    for name in CHARTS:
        expect(page.get_by_role("img", name=name)).to_be_visible()
    expect(page.locator("dl.figures")).to_contain_text("Calls in")
    expect(page.get_by_role("heading", name="By number")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "reports-30-days.png"), full_page=True)
    assert_in_words(page, "the reports page, 30 days")
    assert not violations(page), described(violations(page))

    with page.expect_download() as download:
        page.get_by_role("link", name="Download these figures as CSV").click()
    assert download.value.suggested_filename == "threadline-report-30-days.csv"
    page.context.close()


def test_the_page_needs_no_script(served: str, browser: Browser) -> None:
    page = signed_in(browser, served, java_script_enabled=False)
    page.goto(f"{served}/desk/admin/reports")
    page.get_by_label("Period").select_option(label="Last 7 days")
    page.get_by_label("Number", exact=True).select_option(value=SUPPORT)
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_label("Period")).to_have_value("7")  # the choice shown is the one answered
    expect(page.get_by_label("Number", exact=True)).to_have_value(SUPPORT)
    for name in CHARTS:
        expect(page.get_by_role("img", name=name)).to_be_visible()
    expect(page.locator("dl.figures dd").first).to_have_text("28")  # 1 + 2 + ... + 7 calls in on this number
    page.screenshot(path=str(ARTIFACTS / "reports-7-days-one-number.png"), full_page=True)
    page.context.close()
