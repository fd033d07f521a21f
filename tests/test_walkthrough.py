"""The README's walk-through, word for word, in a fresh clone under `bin/run`: the IVR names the thread, a key
pressed during the greeting reaches it, the agent is connected and the desk pops the thread."""

from __future__ import annotations

import json
import queue
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import requests

from tests.support.carrier import wait_until
from tests.support.processes import free_port
from tests.support.readme import Terminal, clean_environment, shell_blocks, walkthrough

YOU, DEMO_NUMBER = "+14155550123", "+14155550100"


class Desk:
    """Sam's desk: signed in, listening to its Server-Sent Events."""

    def __init__(self, url: str, agent_id: str, password: str) -> None:
        self.url, self.session = url, requests.Session()
        form = self.session.get(f"{url}/desk/login", headers={"Accept": "text/html"}, timeout=10).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token, form
        signed = self.session.post(f"{url}/desk/login", data={"csrf_token": token.group(1), "agent_id": agent_id,
                                                               "password": password}, timeout=10)
        assert signed.status_code == 200 and signed.url.rstrip("/").endswith("/desk"), signed.text
        self.frames: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._listen, daemon=True).start()
        assert self.frames.get(timeout=30) == ": connected"

    def _listen(self) -> None:
        try:
            with self.session.get(f"{self.url}/desk/events", headers={"Accept": "text/event-stream"}, stream=True,
                                  timeout=(10, 300)) as response:
                frame: list[str] = []
                for line in response.iter_lines(decode_unicode=True):
                    if line:
                        frame.append(line)
                    elif frame:
                        self.frames.put("\n".join(frame))
                        frame = []
        except requests.RequestException:
            pass  # the server stopped at the end of the test

    def screen_pop(self) -> dict[str, Any]:
        frame = self.frames.get(timeout=60)
        assert "event: screen_pop" in frame, frame
        return json.loads(frame.split("data: ", 1)[1])


def test_the_readme_walkthrough_works_as_written(clone: Path) -> None:
    text = walkthrough()
    blocks = shell_blocks(text)
    assert len(blocks) == 4 and "bin/run" in blocks[0], blocks
    # What the steps click on the dev phone page is what the page offers.
    page_html = (clone / "carrier" / "templates" / "carrier" / "phone.html").read_text()
    for control in ("Your phone", "Save my number", "Dial from my phone", "Other phones", "ring until I answer here"):
        assert control in text and control in page_html, control
    assert "Say it" in text and "Say it" in (clone / "carrier" / "static" / "phone.js").read_text()
    agent_id, password = re.search(r"echo '([^']+)' \| \.venv/bin/flask agents set-password (\w+)",
                                   text).group(2, 1)  # type: ignore[union-attr]

    port, carrier_port = free_port(), free_port()
    env = clean_environment(PORT=str(port), CARRIER_PORT=str(carrier_port))

    def typed(block: str) -> str:  # the README's default ports, moved to free ones
        return block.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace("127.0.0.1:8700",
                                                                             f"127.0.0.1:{carrier_port}")

    web, carrier = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{carrier_port}/_carrier"
    terminal = Terminal(typed(blocks[0]), clone, env)
    try:
        terminal.wait_for("Threadline is listening on")
        for block in blocks[1:]:  # steps 2-4, in a second terminal
            done = subprocess.run(["bash", "-e", "-c", typed(block)], cwd=clone, env=env, capture_output=True,
                                  text=True, timeout=120)
            assert done.returncode == 0, f"{block}\n{done.stdout}\n{done.stderr}"
        thread = requests.get(f"{web}/api/v1/threads/t-1", headers={"Authorization": "Bearer dev-key"}, timeout=10)
        assert thread.status_code == 200 and thread.json()["customer"]["phone"] == YOU

        desk = Desk(web, agent_id, password)  # step 5
        # Step 6, as the page does it: save your number, dial the demo number from it.
        assert requests.put(f"{carrier}/you", json={"phone": YOU}, timeout=10).status_code == 200
        sid = requests.post(f"{carrier}/inbound", json={"from": YOU, "to": DEMO_NUMBER}, timeout=10).json()["sid"]

        def call() -> dict[str, Any]:
            return requests.get(f"{carrier}/calls/{sid}", timeout=10).json()
        # Step 7: the greeting names the thread; 1 is pressed while it is still being read.
        greeting = wait_until(lambda: next((e["text"] for e in call()["events"] if e["kind"] == "heard"
                                            and "Is this about" in e["text"]), None), timeout=60,
                              message="the greeting")
        assert greeting.startswith("Hi Jane.") and "App crashes at login" in greeting, greeting
        wait_until(lambda: "dtmf" in call()["listening"], timeout=30, message="the greeting to listen for keys")
        pressed = requests.post(f"{carrier}/calls/{sid}/keys", json={"digits": "1"}, timeout=10)
        assert pressed.status_code == 200, pressed.text
        # Step 8: Sam's phone answers, accepts the whisper, is connected; the desk pops the thread.
        pop = desk.screen_pop()
        assert (pop["agent_id"], pop["call_sid"], pop["thread_id"]) == (agent_id, sid, "t-1")
        connected = wait_until(lambda: next((e for e in call()["events"] if e["kind"] == "bridged"), None),
                               timeout=60, message="the agent to be connected")
        assert connected["to"] == "+14155550777"
        timeline = call()
        assert any(e["kind"] == "barged_in" for e in timeline["events"])  # the greeting was cut short by the key
        [agent_leg] = timeline["legs"]
        assert [e["digits"] for e in agent_leg["events"] if e["kind"] == "pressed"] == ["1"]
        assert agent_leg["to_label"] == "Sam Lee" and timeline["from_label"] == "You"
        assert "Jane Doe" in desk.session.get(f"{web}/desk/threads/t-1", timeout=10).text
        requests.post(f"{carrier}/calls/{sid}/hangup", timeout=10)
    finally:
        code, output = terminal.stop()
    assert code == 0, output
    # The dev phone's reads (the test polled the call as the page does) stay out of the terminal.
    assert "GET /_carrier/calls" not in output and "PUT /_carrier/you" in output, output
    shutil.rmtree(clone / "var", ignore_errors=True)
