"""axe-core, the npm package, run in a page: installed once into a cache outside the repository, no build step."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

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
