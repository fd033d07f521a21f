"""The browser phone in Chromium against the real carrier and the real app: the thread pops while the phone rings, the
agent answers, takes the call with the whisper's 1, hangs up and saves the outcome, all in the page."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import jwt
import requests
from playwright.sync_api import Page, WebSocketRoute, expect

from directory.models import AgentConfig
from tests.support.browser import ARTIFACTS, LAPTOP, shot
from tests.support.carrier import CUSTOMER, Served, wait_until
from tests.support.desk import PASSWORD, with_password
from tests.support.pages import assert_on_screen, described, violations
from tests.support.voice import Line

BY_PAGE = "the desk's browser phone"


def leg_of(line: Line, sid: str) -> dict[str, Any]:
    """The agent's leg of the call, as the carrier has it now."""
    call = requests.get(f"{line.carrier.url}/_carrier/calls/{sid}", timeout=5).json()
    return call["legs"][0] if call["legs"] else {}


def test_the_agent_reads_the_pop_while_the_browser_phone_rings_then_takes_the_call_in_the_page(line: Line,
                                                                                               page: Page) -> None:
    line.agent("sam", name="Sam Lee", client_identity="sam.browser", status="available")
    line.agent("lee", name="Lee Park", phone="+14155550778", status="offline")
    line.carrier.desk_url = f"{line.url}/desk/"
    line.thread("t-1")
    with_password(line.app)
    page.goto(f"{line.url}/desk/login")
    page.get_by_label("Agent id").fill("sam")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    phone = page.locator("#softphone")
    expect(phone.locator(".phone-state")).to_have_text("Ready for calls")

    line.script(CUSTOMER, keys=["1"])
    sid = line.call_in(CUSTOMER)

    # The thread pops while the phone rings: the agent reads before answering.
    pop = page.locator("#screen-pop")
    expect(pop.get_by_role("heading", name="App crashes at login")).to_be_visible(timeout=10_000)
    expect(phone.locator(".phone-state")).to_have_text(f"Ringing: call from {CUSTOMER}")
    expect(pop.locator("#call-state")).to_have_text("Ringing")
    assert leg_of(line, sid)["status"] == "ringing"
    expect(phone.get_by_role("status")).to_contain_text("Answer with Alt+Shift+A")
    assert phone.get_by_role("button", name="Answer").get_attribute("aria-keyshortcuts") == "Alt+Shift+A"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "softphone-ringing.png"))

    page.keyboard.press("Alt+Shift+A")  # the announced shortcut answers
    expect(phone.locator(".phone-state")).to_have_text("Connected")
    expect(phone.get_by_role("status")).to_have_text("Connected.")
    timer = phone.get_by_role("timer")
    expect(timer).to_have_text(re.compile(r"^0:0[1-9]$"))  # running
    expect(pop.locator("#call-state")).to_contain_text(re.compile(r"Connected 0:\d\d"))
    page.screenshot(path=str(ARTIFACTS / "softphone-connected.png"))

    # The whisper asks the agent to press 1: the page's keypad sends it.
    wait_until(lambda: leg_of(line, sid)["listening"] == ["dtmf"], message="the whisper to listen for a key")
    phone.get_by_role("group", name="Keypad").get_by_role("button", name="1", exact=True).click()
    wait_until(lambda: any(e["kind"] == "bridged" for e in leg_of(line, sid)["events"]), message="the bridge")
    phone.get_by_role("button", name="Mute").click()
    expect(phone.get_by_role("button", name="Mute")).to_have_attribute("aria-pressed", "true")
    phone.get_by_role("button", name="Hang up").click()
    expect(phone.locator(".phone-state")).to_have_text("Call ended")
    expect(phone.get_by_role("status")).to_contain_text("Call ended after")
    expect(pop.locator("#call-state")).to_contain_text("Call ended")
    ended_at = timer.inner_text()
    page.wait_for_timeout(1100)
    assert timer.inner_text() == ended_at  # the timer stopped with the call

    pop.get_by_label("Outcome").select_option("resolved")
    pop.get_by_label("Notes").fill("Talked it through in the browser")
    pop.get_by_role("button", name="Save outcome").click()
    expect(page.get_by_text("Saved, and sent to the conversation.")).to_be_visible()

    call = line.finished(sid)
    [agent] = call["legs"]
    assert agent["to"] == "client:sam.browser" and agent["status"] == "completed"
    assert [e["kind"] for e in agent["events"] if e.get("by") == BY_PAGE] == ["picked_up", "muted", "hung_up"]
    assert [e["digits"] for e in agent["events"] if e["kind"] == "pressed"] == ["1"]
    assert any(e["kind"] == "bridged" for e in call["events"]) and call["events"][-1]["kind"] != "error"
    record = wait_until(lambda: (r := line.history(sid)) and r.status == "completed" and r)
    assert record.agent_id == "sam" and "agent_accepted" in [step.kind for step in record.steps]


def test_with_the_browser_phone_connected_the_briefing_still_fits_a_laptop_and_axe_finds_nothing_serious(
        line: Line, laptop: Page) -> None:
    line.agent("sam", name="Sam Lee", client_identity="sam.browser", status="available")
    line.carrier.desk_url = f"{line.url}/desk/"
    line.thread("t-1", messages=[{"id": f"m{n}", "author": "customer" if n % 2 else "agent", "name": "Jane",
                                  "text": f"Message number {n} about the crash", "sent_at": f"2026-11-22T10:0{n}:00Z"}
                                 for n in range(1, 8)])
    with_password(line.app)
    laptop.goto(f"{line.url}/desk/login")
    laptop.get_by_label("Agent id").fill("sam")
    laptop.get_by_label("Password").fill(PASSWORD)
    laptop.get_by_role("button", name="Sign in").click()
    phone = laptop.locator("#softphone")
    expect(phone.locator(".phone-state")).to_have_text("Ready for calls")
    line.script(CUSTOMER, keys=["1"])
    line.call_in(CUSTOMER)
    pop = laptop.locator("#screen-pop")
    expect(pop.locator("#call-state")).to_have_text("Ringing", timeout=10_000)
    assert described(violations(laptop)) == []  # ringing: the bar's Answer, the pop
    laptop.keyboard.press("Alt+Shift+A")
    expect(pop.locator("#call-state")).to_contain_text("Connected")  # the keypad shows: the bar at its tallest
    newest = pop.locator("li.message")
    assert_on_screen(laptop, {"name": pop.locator(".customer .name"), "subject": pop.locator("#thread-title"),
                              "reason": pop.locator(".reason"), "call state": pop.locator("#call-state"),
                              "phone bar": phone, **{f"message {7 - i}": newest.nth(i) for i in range(3)}}, LAPTOP)
    expect(newest.nth(0)).to_contain_text("Message number 7")
    shot(laptop, "popped-thread-1366x768-browser-phone")
    assert described(violations(laptop)) == []
    phone.get_by_role("button", name="Hang up").click()
    expect(phone.locator(".phone-state")).to_have_text("Call ended")


# Real Twilio's settings: an account and an API key (no auth token is needed to sign the browser's token).
ACCOUNT, KEY_SID, SECRET = "AC" + "1" * 32, "SK" + "2" * 32, "s" * 32
SIGNALLING = re.compile(r"^wss://voice-js\.roaming\.twilio\.com/signal")
# Every CSP violation in the page, however caused (an init script is not itself subject to the page's CSP).
VIOLATIONS = ("window.violations = []; document.addEventListener('securitypolicyviolation', "
              "(e) => window.violations.push(`${e.violatedDirective} ${e.blockedURI}`));")
PROBE = """async (url) => {
  const before = window.violations.length;
  try { new WebSocket(url); } catch (error) { return [String(error)]; }
  await new Promise((resolve) => setTimeout(resolve, 300));
  return window.violations.slice(before);
}"""


def test_with_real_twilio_the_page_registers_twilios_sdk_with_the_desks_token_and_renews_it(make_app: Any,
                                                                                             page: Page) -> None:
    app = make_app(SECRET_KEY="test-secret", TWILIO_ACCOUNT_SID=ACCOUNT, TWILIO_API_KEY_SID=KEY_SID,
                   TWILIO_API_KEY_SECRET=SECRET, PUBLIC_BASE_URL="https://support.example.com")
    app.extensions["threadline.agents"].put("sam", AgentConfig(name="Sam Lee", client_identity="sam.browser",
                                                               status="available"), datetime.now(UTC))
    with_password(app)
    served = Served(app)
    sent: list[dict[str, Any]] = []

    def twilio_signalling(socket: WebSocketRoute) -> None:
        """Twilio's signalling server, as far as registering goes: connected after listen (saying the token has 11 s
        left, as a page open nearly ten minutes would hear), ready after register."""
        def heard(message: str | bytes) -> None:
            sent.append(json.loads(message))
            if sent[-1]["type"] == "listen":
                token = {"identity": "sam.browser", "ttl": 11}
                socket.send(json.dumps({"type": "connected", "payload": {"region": "us1", "token": token}}))
            elif sent[-1]["type"] == "register":
                socket.send(json.dumps({"type": "ready", "payload": {}}))
        socket.on_message(heard)

    def tokens() -> list[str]:
        return [m["payload"]["token"] for m in sent if m["type"] == "listen"]

    page.route_web_socket(SIGNALLING, twilio_signalling)
    page.route(re.compile(r"^https://[a-z0-9.-]+\.twilio\.com/"), lambda route: route.fulfill(json={}))  # insights
    page.add_init_script(VIOLATIONS)
    page.goto(f"{served.url}/desk/login")
    page.get_by_label("Agent id").fill("sam")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#softphone .phone-state")).to_have_text("Ready for calls")
    assert page.evaluate("typeof window.Twilio.Device") == "function"
    [first] = tokens()
    assert jwt.decode(first, SECRET, algorithms=["HS256"])["grants"]["identity"] == "sam.browser"

    for _ in range(100):  # 10 s before the token expires, the SDK asks for another: /desk/token gives it
        if len(tokens()) == 2:
            break
        page.wait_for_timeout(50)
    assert len(tokens()) == 2 and tokens()[1] != first, "the SDK was not given a fresh token before the first expired"
    assert jwt.decode(tokens()[1], SECRET, algorithms=["HS256"])["grants"]["identity"] == "sam.browser"

    assert page.evaluate("window.violations") == []
    assert page.evaluate(PROBE, "wss://voice-js.roaming.twilio.com/probe") == []  # the CSP lets the SDK reach Twilio
    assert page.evaluate(PROBE, "wss://example.com/probe") != []  # and nothing else
    served.stop()
