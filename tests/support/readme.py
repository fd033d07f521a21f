"""Running the README as a new user does: its shell blocks, a fresh clone with a ready .venv, `bin/run` in a
terminal of its own."""

from __future__ import annotations

import hashlib
import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil

from tests.support.carrier import wait_until
from tests.support.processes import ROOT


def walkthrough() -> str:
    """The README's text between the walk-through markers."""
    text = (ROOT / "README.md").read_text()
    start, end = text.index("<!-- walkthrough -->"), text.index("<!-- /walkthrough -->")
    return text[start:end]


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment as a new user's shell has it: no Threadline, Twilio or Flask settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "THREADLINE_", "FLASK_")) and k not in ("REDIS_URL", "PUBLIC_BASE_URL",
                                                                                      "HOST", "PORT")}
    return {**env, **extra}


def shell_blocks(text: str) -> list[str]:
    """The `sh` code blocks, as a person would paste them."""
    return [textwrap.dedent(block) for _, block in re.findall(r"^( *)```sh\n(.*?)^\1```", text, re.M | re.S)]


def borrowed_venv(clone: Path) -> None:
    """Give the clone a .venv that uses this interpreter's packages: bin/setup finds it installed and skips pip."""
    venv, prefix = clone / ".venv", Path(sys.prefix)
    (venv / "bin").mkdir(parents=True)
    base = Path(sys.executable).resolve()
    is_venv = (prefix / "pyvenv.cfg").exists()
    (venv / "pyvenv.cfg").write_text(f"home = {base.parent}\n"
                                     f"include-system-site-packages = {'false' if is_venv else 'true'}\n")
    if is_venv:
        (venv / "lib").symlink_to(prefix / "lib")
        for tool in (prefix / "bin").iterdir():
            if not tool.name.startswith(("python", "activate", "Activate")):
                (venv / "bin" / tool.name).symlink_to(tool)
    for name in ("python", "python3"):
        (venv / "bin" / name).symlink_to(base)
    digest = hashlib.sha256((clone / "requirements.txt").read_bytes() * 2).hexdigest()  # as bin/setup computes it
    (venv / ".installed-requirements.txt").write_text(digest + "\n")


class Terminal:
    """The first terminal: `bin/run` with its output collected."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.lines.put(line)

    def wait_for(self, text: str) -> None:
        def seen() -> bool:
            while not self.lines.empty():
                self.output.append(self.lines.get())
            return any(text in line for line in self.output) or self.process.poll() is not None
        wait_until(seen, timeout=180, message=text)
        assert any(text in line for line in self.output), "".join(self.output)

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as a person stops it; its exit code and everything it printed."""
        os.killpg(self.process.pid, signal.SIGINT)
        code = self.process.wait(60)
        self.reader.join(30)
        while not self.lines.empty():
            self.output.append(self.lines.get())
        return code, "".join(self.output)


def fresh_clone(tmp_path: Path) -> Iterator[Path]:
    """A clone of this repository with a ready .venv; nothing started from it outlives the caller."""
    target = tmp_path / "threadline"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True)
    borrowed_venv(target)
    yield target
    for proc in psutil.process_iter():  # nothing of this clone may outlive the test
        try:
            if str(target) in " ".join(proc.cmdline()) or proc.cwd() == str(target):
                proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
