"""The admin forms in Chromium: an admin changes a number's Tuesday hours and adds a holiday, a wrong time is shown
beside its field with everything typed kept, and the admin API reads the change back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.support.admin import ADMIN_KEY, SUPPORT, admin_desk
from tests.support.browser import ARTIFACTS
from tests.support.carrier import Served
from tests.support.desk import PASSWORD


@pytest.fixture
def served(make_app: Any) -> Iterator[str]:
    """The admin desk over HTTP: its base URL."""
    server = Served(admin_desk(make_app))
    yield server.url
    server.stop()


def sign_in_as_admin(page: Page, base: str) -> None:
    page.goto(f"{base}/desk/login")
    page.get_by_label("Agent id").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_an_admin_changes_tuesday_hours_and_adds_a_holiday(served: str, page: Page) -> None:
    page.set_viewport_size({"width": 1366, "height": 768})
    sign_in_as_admin(page, served)
    page.goto(f"{served}/desk/admin/")
    page.get_by_role("link", name=SUPPORT).click()
    expect(page.get_by_role("heading", name=f"Support number {SUPPORT}")).to_be_visible()

    page.get_by_label("During the hours below").check()
    tuesday = page.get_by_role("group", name="Tuesday")
    tuesday.get_by_label("Tuesday, range 1: Opens").fill("09:00")
    tuesday.get_by_label("Tuesday, range 1: Closes").fill("25:00")  # a wrong time first
    tuesday.get_by_role("button", name="Add a range").click()  # a third row, from the script
    expect(tuesday.get_by_label("Tuesday, range 3: Opens")).to_be_focused()
    tuesday.get_by_label("Tuesday, range 3: Opens").fill("14:00")
    tuesday.get_by_label("Tuesday, range 3: Closes").fill("18:30")
    holidays = page.get_by_role("group", name="Days the number is closed all day")
    holidays.get_by_label("Holiday 2", exact=True).fill("2026-07-04")
    page.get_by_label("Label", exact=True).fill("US support")
    page.get_by_role("button", name="Save", exact=True).click()

    closes = page.get_by_label("Tuesday, range 1: Closes")
    expect(closes).to_have_attribute("aria-invalid", "true")
    expect(closes).to_have_accessible_description("write a time as hours:minutes from 00:00 to 24:00, such as "
                                                  "09:30, not '25:00'")
    expect(page.locator("#tue-end-0-error")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Tuesday hours")
    # Everything typed is still there.
    expect(closes).to_have_value("25:00")
    expect(page.get_by_label("Tuesday, range 3: Opens")).to_have_value("14:00")
    expect(page.get_by_label("Holiday 2", exact=True)).to_have_value("2026-07-04")
    expect(page.get_by_label("Label", exact=True)).to_have_value("US support")
    page.get_by_role("alert").get_by_role("link", name="Tuesday hours").click()
    expect(closes).to_be_in_viewport()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-number-form-with-a-wrong-time.png"), full_page=True)

    closes.fill("12:00")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text(f"Saved {SUPPORT}.")).to_be_visible()

    number = requests.get(f"{served}/api/v1/numbers/{quote(SUPPORT)}", timeout=10,
                          headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()
    assert number["business_hours"]["tue"] == [["09:00", "12:00"], ["14:00", "18:30"]]
    assert number["business_hours"]["mon"] == [["09:00", "12:00"], ["13:00", "17:00"]]
    assert number["holidays"] == ["2026-12-25", "2026-07-04"]
    assert number["label"] == "US support" and number["agents"] == ["sam"]


def test_the_voice_list_follows_the_language_and_rows_are_removed(served: str, page: Page) -> None:
    sign_in_as_admin(page, served)
    page.goto(f"{served}/desk/admin/numbers/{SUPPORT}")
    voice = page.get_by_label("Voice", exact=True)
    voice.select_option("Polly.Salli")
    page.get_by_label("Language callers hear").select_option("fr-FR")
    expect(voice).to_have_value("")  # Salli does not speak French
    offered = voice.locator("option:not(:disabled)").all_inner_texts()
    assert offered == ["The language's usual voice", "Celine", "Lea", "Mathieu"]
    voice.select_option("Polly.Lea")
    page.get_by_role("button", name="Remove Holiday 1").click()
    page.get_by_role("button", name="Remove Monday, range 2").click()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text(f"Saved {SUPPORT}.")).to_be_visible()
    number = requests.get(f"{served}/api/v1/numbers/{quote(SUPPORT)}", timeout=10,
                          headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()
    assert (number["language"], number["voice"], number["holidays"]) == ("fr-FR", "Polly.Lea", [])
    assert number["business_hours"]["mon"] == [["09:00", "12:00"]]
