"""What people meet on a desk page, checked in Chromium: machine words in what they read (ISO timestamps,
snake_case codes, Twilio's jargon), and axe-core's serious or critical violations (the npm package, installed once
into a cache outside the repository, no build step)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

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


CACHE = Path(os.environ.get("THREADLINE_AXE_CACHE") or Path(tempfile.gettempdir()) / "threadline-axe-core")
SCRIPT = CACHE / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


def axe_script() -> Path:
    """axe.min.js, installed with npm into the cache the first time (npm missing: a failure that says so)."""
    if not SCRIPT.exists():
        npm = shutil.which("npm")
        assert npm, "npm is missing: the accessibility tests install axe-core with it (apt-get install npm)"
        done = subprocess.run([npm, "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", "--no-save",
                               "axe-core@4"], capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0 and SCRIPT.exists(), f"npm could not install axe-core: {done.stderr[-2000:]}"
    return SCRIPT


def violations(page: Page) -> list[dict[str, Any]]:
    """axe's serious and critical violations on the page as it stands (its context must bypass the page's CSP,
    which runs no injected script)."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(axe_script()))
    result = page.evaluate("() => window.axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v["impact"] in BLOCKING]


def described(found: list[dict[str, Any]]) -> list[str]:
    """Each violation in a line: its rule, impact, help and the first elements it names."""
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:4]]}" for v in found]


def assert_on_screen(page: Page, wanted: dict[str, Any], viewport: dict[str, int]) -> None:
    """Each named element is shown whole inside the window, the page unscrolled."""
    assert page.evaluate("window.scrollY") == 0
    for what, element in wanted.items():
        box = element.bounding_box()
        assert box, f"the {what} is not shown"
        assert 0 <= box["y"] and box["y"] + box["height"] <= viewport["height"], f"the {what} is below the fold: {box}"
        assert 0 <= box["x"] and box["x"] + box["width"] <= viewport["width"], f"the {what} is off the side: {box}"
