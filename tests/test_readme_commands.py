"""Every command the README shows runs as written, beside `bin/run` in a fresh clone; those that cannot run here
are named with the reason, so a new command can't slip in untried."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import requests

from tests.support.carrier import wait_until
from tests.support.processes import free_port
from tests.support.readme import ROOT, Terminal, clean_environment, shell_blocks, walkthrough

# Blocks not run here, each known by a line it holds, and why.
NOT_RUN_HERE = {
    "bin/test": "it is the command running this test",
    "bench/context.py": "the benchmarks run for minutes and print figures; nothing to assert",
    "bench/chaos.py --scenario": "the chaos suite runs for many minutes (tests/test_chaos.py runs its CI scenario)",
}
# Inline `flask …` commands not run here, and why.
INLINE_NOT_RUN = {
    ".venv/bin/flask numbers apply --file all.yaml": "names a file of the reader's own",
    ".venv/bin/flask numbers sync +1…": "a placeholder for the reader's number",
    ".venv/bin/flask agents set-password sam": "asks for a password at a prompt (the walk-through runs it)",
}
LONG_RUNNING = "-m carrier --port"  # a server of its own: started, asked, stopped with Ctrl-C


def readme_commands() -> tuple[list[str], list[str]]:
    """The README's `sh` blocks outside the walk-through (test_walkthrough.py runs those), and its inline `flask`
    commands."""
    text = (ROOT / "README.md").read_text()
    outside = text.replace(walkthrough(), "")
    inline = sorted(set(re.findall(r"`((?:\.venv/bin/)?flask [^`]+)`", outside)))
    return shell_blocks(outside), inline


def test_every_readme_command_runs_as_written(clone: Path) -> None:
    blocks, inline = readme_commands()
    skipped = [b for b in blocks if any(marker in b for marker in NOT_RUN_HERE)]
    assert len(skipped) == len(NOT_RUN_HERE), "a skipped command is gone from the README: update NOT_RUN_HERE"
    run_command, *to_run = [b for b in blocks if b not in skipped]
    assert run_command.strip() == "THREADLINE_API_KEYS=dev-key bin/run"
    server = [b for b in to_run if LONG_RUNNING in b]
    assert len(server) == 1, to_run
    assert set(INLINE_NOT_RUN) <= set(inline), "an inline command is gone from the README: update INLINE_NOT_RUN"

    port, carrier_port, spare_port = free_port(), free_port(), free_port()
    env = clean_environment(PORT=str(port), CARRIER_PORT=str(carrier_port))

    def typed(block: str) -> str:  # the README's default ports, moved to free ones
        return block.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace("127.0.0.1:8700",
                                                                             f"127.0.0.1:{carrier_port}")

    def shell(command: str, **extra: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["bash", "-e", "-c", command], cwd=clone, env={**env, **extra}, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        return done

    terminal = Terminal(typed(run_command), clone, env)
    try:
        terminal.wait_for("Threadline is listening on")
        for block in to_run:
            if block in server:
                continue
            shell(typed(block))  # curl exits 0 whatever the status: what the blocks made is checked below
        for command in inline:
            if command not in INLINE_NOT_RUN:
                shell(command, FLASK_APP="app:create_app")
        # What the blocks did is there: the thread, the number, the agent, the callback.
        auth = {"Authorization": "Bearer dev-key"}
        callbacks = requests.get(f"http://127.0.0.1:{port}/api/v1/threads/t-1/callbacks", headers=auth, timeout=10)
        assert callbacks.status_code == 200 and len(callbacks.json()["callbacks"]) == 1, callbacks.text
        listed = shell(".venv/bin/flask agents list", FLASK_APP="app:create_app").stdout
        assert "Ada Park" in listed and "Sam Lee" in listed, listed
    finally:
        code, output = terminal.stop()
    assert code == 0, output

    # The carrier on its own, as the README starts it (on a free port: a user runs it instead of bin/run's).
    [command] = server
    carrier = subprocess.Popen(["bash", "-c", command.replace("--port 8700", f"--port {spare_port}")], cwd=clone,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        def answers() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{spare_port}/_carrier/calls", timeout=2).status_code == 200
            except requests.ConnectionError:
                return carrier.poll() is not None
        wait_until(answers, timeout=60, message="the carrier")
        assert carrier.poll() is None, carrier.stdout.read() if carrier.stdout else ""
    finally:
        carrier.send_signal(signal.SIGINT)
        carrier.wait(30)
