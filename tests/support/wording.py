"""What people read on a page, checked for machine words: ISO timestamps, snake_case codes, Twilio's jargon."""

from __future__ import annotations

import re

from playwright.sync_api import Page

ISO_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T")
SNAKE_CASE = re.compile(r"\b[A-Za-z0-9]+_[A-Za-z0-9_]*[A-Za-z0-9]\b")
JARGON = ("outbound-api", "in-progress", "a call without a thread")
# The attributes a browser shows or reads out to people, beside the page's visible text.
READ_ATTRIBUTES = ("title", "aria-label", "placeholder")


def read_text(page: Page) -> list[str]:
    """The page's title, its visible text, and the attributes people see or hear."""
    attributes = page.eval_on_selector_all(
        ",".join(f"[{name}]" for name in READ_ATTRIBUTES),
        f"(nodes) => nodes.flatMap((n) => {list(READ_ATTRIBUTES)!r}.map((a) => n.getAttribute(a)).filter(Boolean))")
    return [page.title(), page.inner_text("body"), *attributes]


def machine_words(page: Page) -> list[str]:
    """Every ISO timestamp, snake_case token or piece of Twilio jargon a person would read on the page."""
    found = []
    for text in read_text(page):
        found += [f"ISO timestamp {m.group(0)!r}" for m in ISO_TIMESTAMP.finditer(text)]
        found += [f"code {m.group(0)!r}" for m in SNAKE_CASE.finditer(text)]
        found += [f"jargon {word!r}" for word in JARGON if word in text.lower()]
    return found


def assert_in_words(page: Page, state: str) -> None:
    """Fail naming the page state and each machine word found in it."""
    found = machine_words(page)
    assert not found, f"{state} ({page.url}) shows machine words: {found}"
