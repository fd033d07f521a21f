"""The desk in a real browser: an agent signs in, a call reaches them, the conversation pops up at once."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.support.carrier import AGENT, CUSTOMER, OUTLASTS_AGENT
from tests.support.desk import PASSWORD, with_password
from tests.support.voice import Line

HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script><a href="javascript:window.pwned=3">x</a>'


def test_a_call_pops_the_thread_on_the_signed_in_agents_screen(line: Line, page: Page) -> None:
    with_password(line.app)
    messages = [{"id": "m1", "author": "customer", "name": "Jane", "text": "The app closes as soon as I log in",
                 "sent_at": "2026-11-22T10:00:00Z"},
                {"id": "m2", "author": "customer", "name": HOSTILE, "text": HOSTILE,
                 "sent_at": "2026-11-22T10:01:00Z"},
                {"id": "m3", "author": "agent", "name": "sam", "text": "Looking into it",
                 "sent_at": "2026-11-22T10:02:00Z"}]
    line.thread("t-1", messages=messages, metadata={"plan": "pro", "note": HOSTILE})

    page.goto(f"{line.url}/desk/login")
    page.get_by_label("Agent id").fill("sam")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Waiting for a call")).to_be_visible()

    line.script(CUSTOMER, keys=["1"], hangup_after=OUTLASTS_AGENT)
    line.script(AGENT, keys=["1"], hangup_after=60)
    line.call_in(CUSTOMER)

    pop = page.locator("#screen-pop")
    expect(pop.get_by_role("heading", name="App crashes at login")).to_be_visible(timeout=10_000)
    expect(pop).to_contain_text("The app closes as soon as I log in")
    expect(pop).to_contain_text("Looking into it")
    expect(pop).to_contain_text("NullPointerException in LoginViewController")
    expect(pop).to_contain_text("iPhone 14")
    expect(pop).to_contain_text("Their time ")  # the customer's local time
    expect(pop.get_by_text(HOSTILE).first).to_be_visible()  # shown as text
    assert pop.locator("li.message.customer").count() == 2 and pop.locator("li.message.agent").count() == 1
    assert page.evaluate("window.pwned") is None
    assert page.locator('a[href^="javascript:"]').count() == 0
    # After the call (the form opens when it ends): the outcome and notes go back into the thread.
    expect(pop.get_by_role("button", name="Save outcome")).to_be_visible(timeout=15_000)
    pop.get_by_label("Outcome").select_option("resolved")
    pop.get_by_label("Notes").fill("Reinstalled; login works again")
    pop.get_by_role("button", name="Save outcome").click()
    expect(page.get_by_text("Saved, and sent to the conversation.")).to_be_visible()
    events = line.app.test_client().get("/api/v1/threads/t-1/events",
                                        headers={"Authorization": "Bearer test-key-0123456789"}).get_json()["events"]
    assert events[0]["type"] == "call.disposition"
    assert events[0]["data"]["notes"] == "Reinstalled; login works again"
