"""The desk as an agent reads it, in Chromium: every page state in words, the popped thread a briefing that fits a
laptop's screen, and nothing axe-core calls serious; calls go through the local carrier."""

from __future__ import annotations

import requests
from playwright.sync_api import Page, expect

from tests.support.api import API_KEY
from tests.support.browser import LAPTOP, shot
from tests.support.carrier import AGENT, CUSTOMER, SUPPORT
from tests.support.desk import PASSWORD, with_password
from tests.support.pages import assert_in_words, assert_on_screen, described, violations
from tests.support.voice import OTHER_AGENT, Line

STRANGER = "+14155550999"  # a caller with no conversation
MESSAGES = [
    {"id": "m1", "author": "customer", "name": "Jane", "text": "The app closes as soon as I log in.",
     "sent_at": "2026-11-22T10:00:00Z",
     "attachments": [{"name": "crash.png", "url": "https://files.example.com/crash.png"}]},
    {"id": "m2", "author": "bot", "text": "Thanks Jane. Which version of the app do you have?",
     "sent_at": "2026-11-22T10:00:05Z"},
    {"id": "m3", "author": "customer", "name": "Jane", "text": "3.2.1 from the App Store, on an iPhone 14.",
     "sent_at": "2026-11-22T10:01:00Z"},
    {"id": "m4", "author": "agent", "name": "Sam", "text": "Thanks. Does it also close when you use Face ID?",
     "sent_at": "2026-11-22T10:02:00Z"},
    {"id": "m5", "author": "customer", "name": "Jane", "text": "Yes, every time. I need to reach my orders today.",
     "sent_at": "2026-11-22T10:03:00Z"},
]


def desk(line: Line) -> Line:
    """Sam and Lee on the line (Lee offline, so every call rings Sam), Ada an admin, Jane's thread of five messages."""
    line.agent("lee", name="Lee Park", phone=OTHER_AGENT, status="offline")
    line.agent("ada", name="Ada Park", role="admin")
    for agent_id in ("sam", "ada"):
        with_password(line.app, agent_id)
    line.thread("t-1", messages=MESSAGES)
    return line


def sign_in(page: Page, line: Line, agent_id: str = "sam") -> None:
    page.goto(f"{line.url}/desk/login")
    page.get_by_label("Agent id").fill(agent_id)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def callback_tomorrow(line: Line) -> None:
    response = requests.post(f"{line.url}/api/v1/threads/t-1/callbacks", timeout=10,
                             headers={"Authorization": f"Bearer {API_KEY}"},
                             json={"number": SUPPORT, "when": "tomorrow at 3pm"})
    assert response.status_code == 201, response.text


def voicemail(line: Line) -> None:
    """Jane calls while nobody is free and leaves a voicemail in her thread."""
    line.agent("sam", name="Sam Lee", phone=AGENT, status="away")
    line.script(CUSTOMER, keys=["1"], record_seconds=3)
    line.finished(line.call_in(CUSTOMER))
    line.agent("sam", name="Sam Lee", phone=AGENT, status="available")


def popped_call(line: Line, page: Page, caller: str = CUSTOMER, keys: list[str] | None = None) -> str:
    """A call from caller that Sam answers and talks on for about eight seconds; its briefing pops on his desk."""
    line.script(caller, keys=keys or ["1"], hangup_after=4000)
    line.script(AGENT, keys=["1"], hangup_after=1600)
    sid = line.call_in(caller)
    expect(page.locator("#screen-pop .briefing")).to_be_visible(timeout=15_000)
    return sid


def test_every_desk_page_state_reads_in_words(line: Line, laptop: Page) -> None:
    page = laptop
    voicemail(desk(line))
    callback_tomorrow(line)

    page.goto(f"{line.url}/desk/login")
    assert_in_words(page, "the sign-in page")
    page.get_by_label("Agent id").fill("sam")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert_in_words(page, "a refused sign-in")

    sign_in(page, line)
    expect(page.get_by_text("Waiting for a call")).to_be_visible()
    expect(page.locator("#upcoming-title + table")).to_contain_text("Jane Doe: App crashes at login")
    assert_in_words(page, "home with an upcoming callback")

    popped_call(line, page)
    pop = page.locator("#screen-pop")
    expect(pop.locator("#after-call")).to_contain_text("opens here when the call ends")
    expect(pop.locator("#call-state")).to_contain_text("Ringing")
    expect(page.locator("#pop-announce")).to_have_text("Call from Jane Doe about App crashes at login")
    expect(pop).to_contain_text("confirmed: App crashes at login")
    assert_in_words(page, "the popped thread during the call")

    expect(pop.get_by_role("button", name="Save outcome")).to_be_visible(timeout=30_000)  # the call ended
    expect(pop.locator("#call-state")).to_contain_text("Call ended after")
    expect(pop.locator(".timeline")).to_contain_text(", pressed 1, talked ")
    assert_in_words(page, "the popped thread after the call")

    pop.get_by_label("Outcome").select_option("follow-up")
    pop.get_by_role("button", name="Save outcome").click()
    expect(page.get_by_text("Saved, and sent to the conversation.")).to_be_visible()
    timeline = page.locator(".timeline")
    expect(timeline).to_contain_text("left a voicemail")
    expect(timeline).to_contain_text("Sam marked it follow-up needed")
    expect(timeline).to_contain_text("callback canceled")  # Jane called in: her callback went
    expect(page.locator(".message.bot").first).to_contain_text("Voicemail (bot)")
    assert_in_words(page, "the thread with calls, a callback and a voicemail")

    callback_tomorrow(line)
    page.goto(f"{line.url}/desk/")
    expect(page.locator("#recent-title + ul")).to_contain_text("App crashes at login")
    assert_in_words(page, "home with a screen pop and an upcoming callback")

    popped_call(line, page, STRANGER, keys=["000000", "000000"])
    expect(page.locator("#screen-pop")).to_contain_text("No conversation found for this call")
    assert_in_words(page, "the screen pop of a call without a conversation")
    page.reload()
    expect(page.locator("#recent-title + ul")).to_contain_text("no conversation found for the caller")
    assert_in_words(page, "home after a call without a conversation")


def test_the_admin_pages_read_in_words(line: Line, laptop: Page) -> None:
    sign_in(laptop, desk(line), "ada")
    for path in ("/desk/admin/", f"/desk/admin/numbers/{SUPPORT}", "/desk/admin/agents/sam",
                 "/desk/admin/numbers/new", "/desk/admin/agents/new"):  # the YAML tabs are code: field names and all
        laptop.goto(f"{line.url}{path}")
        assert_in_words(laptop, f"the admin page {path}")
    # The forms' problems, in words too.
    laptop.goto(f"{line.url}/desk/admin/agents/new")
    laptop.get_by_label("Agent id").fill("bad id!")
    laptop.get_by_label("Name", exact=True).fill("Kim")
    laptop.get_by_role("button", name="Add", exact=True).click()
    expect(laptop.get_by_role("alert")).to_be_visible()
    assert_in_words(laptop, "a new agent refused")
    laptop.goto(f"{line.url}/desk/admin/numbers/{SUPPORT}")
    laptop.get_by_label("During the hours below").check()
    laptop.get_by_label("Tuesday, range 1: Opens").fill("09:00")
    laptop.get_by_label("Tuesday, range 1: Closes").fill("25:00")
    laptop.get_by_role("button", name="Save", exact=True).click()
    expect(laptop.get_by_role("alert")).to_be_visible()
    assert_in_words(laptop, "a number refused for a wrong time")


def test_the_popped_thread_fits_a_laptop_screen(line: Line, laptop: Page) -> None:
    desk(line)
    sign_in(laptop, line)
    popped_call(line, laptop)
    pop = laptop.locator("#screen-pop")
    newest = pop.locator("li.message")
    wanted = {"name": pop.locator(".customer .name"), "subject": pop.locator("#thread-title"),
              "reason": pop.locator(".reason"), "their time": pop.locator(".their-time"),
              "call state": pop.locator("#call-state"),
              **{f"message {MESSAGES[-1 - i]['id']}": newest.nth(i) for i in range(3)}}
    expect(newest.nth(0)).to_contain_text(MESSAGES[-1]["text"])  # newest first
    shot(laptop, "popped-thread-1366x768")
    assert_on_screen(laptop, wanted, LAPTOP)
    expect(pop.locator(".customer .name")).to_have_text("Jane Doe")
    expect(pop.locator(".their-time")).to_contain_text("(Los Angeles)")


def test_axe_finds_nothing_serious_on_the_desk(line: Line, laptop: Page) -> None:
    desk(line)
    callback_tomorrow(line)
    found: dict[str, list[str]] = {}

    def check(state: str) -> None:
        if problems := described(violations(laptop)):
            found[state] = problems

    laptop.goto(f"{line.url}/desk/login")
    check("sign-in")
    sign_in(laptop, line)
    check("home")
    popped_call(line, laptop)
    check("popped thread")
    laptop.goto(f"{line.url}/desk/threads/t-1")
    check("thread")
    laptop.get_by_role("button", name="Sign out").click()
    sign_in(laptop, line, "ada")
    for path in ("/desk/admin/", f"/desk/admin/numbers/{SUPPORT}", "/desk/admin/agents/sam"):
        laptop.goto(f"{line.url}{path}")
        check(f"admin {path}")
    assert found == {}
