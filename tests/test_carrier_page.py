"""The dev phone page in a real browser: a person answers a call and presses a key."""

from __future__ import annotations

import re

import requests
from playwright.sync_api import Page, expect

from carrier.server import CarrierServer
from tests.support.carrier import AGENT, CUSTOMER, SUPPORT, Served, VoiceApp, wait_until
from voice.twilio_client import make_client


def test_a_person_answers_on_the_page_and_presses_1(carrier: CarrierServer, page: Page) -> None:
    app = VoiceApp(carrier.state.auth_token)
    served = Served(app.build())
    try:
        requests.put(f"{carrier.url}/_carrier/phones/{AGENT}", json={"answer": "busy"}, timeout=5)
        page.goto(f"{carrier.url}/_carrier/")
        page.get_by_label("Phone number (E.164)").fill(CUSTOMER)
        page.get_by_label("When called").select_option("manual")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.get_by_text(f"Saved: {CUSTOMER} rings until answered here.")).to_be_visible()
        assert carrier.state.script_for(CUSTOMER).answer == "manual"

        client = make_client(carrier.state.account_sid, carrier.state.auth_token, carrier.url)
        sid = client.calls.create(to=CUSTOMER, from_=SUPPORT, url=f"{served.url}/ivr").sid
        page.get_by_role("button", name="Answer").click(timeout=10_000)
        expect(page.get_by_text("Welcome to Acme. Press 1 to talk to support.")).to_be_visible(timeout=10_000)
        page.get_by_role("group", name="keypad").get_by_role("button", name="1", exact=True).click()
        expect(page.get_by_text("Dial ended: busy.")).to_be_visible(timeout=10_000)
        assert app.hits_to("/ivr/choice")[0].form["Digits"] == "1"
        assert client.calls(sid).fetch().status == "completed"
    finally:
        served.stop()


def test_what_the_app_says_is_shown_as_text_never_run(carrier: CarrierServer, page: Page) -> None:
    hostile = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    client = make_client(carrier.state.account_sid, carrier.state.auth_token, carrier.url)
    twiml = f"<Response><Say>{hostile.replace('&', '&amp;').replace('<', '&lt;')}</Say></Response>"
    sid = client.calls.create(to=CUSTOMER, from_=SUPPORT, twiml=twiml).sid
    wait_until(lambda: client.calls(sid).fetch().status == "completed")
    page.goto(f"{carrier.url}/_carrier/")
    expect(page.get_by_text(hostile, exact=False)).to_be_visible(timeout=10_000)
    assert page.evaluate("window.pwned") is None


def test_you_save_your_number_dial_and_your_keys_reach_the_menu(carrier: CarrierServer, page: Page) -> None:
    app = VoiceApp(carrier.state.auth_token)
    served = Served(app.build())
    try:
        requests.put(f"{carrier.url}/_carrier/numbers/{SUPPORT}", json={"voice_url": f"{served.url}/long-menu",
                                                                        "friendly_name": "Acme Support"}, timeout=5)
        page.goto(f"{carrier.url}/_carrier/")
        expect(page.get_by_role("link", name="Open the agent desk")).to_have_attribute(
            "href", "http://127.0.0.1:8000/desk/")
        page.get_by_label("Your phone number").fill(CUSTOMER)
        page.get_by_role("button", name="Save my number").click()
        expect(page.get_by_text(f"Saved: you are {CUSTOMER}.")).to_be_visible()
        page.get_by_label("Number to call").select_option(label=f"Acme Support ({SUPPORT})")
        page.get_by_role("button", name="Dial from my phone").click()
        expect(page.get_by_text(f"Call in: You ({CUSTOMER}) → Acme Support ({SUPPORT})")).to_be_visible()
        expect(page.get_by_text("Listening for keys and words now.")).to_be_visible(timeout=10_000)
        page.get_by_role("group", name="keypad").get_by_role("button", name="1", exact=True).click()
        expect(page.get_by_text("pressed 1")).to_be_visible(timeout=10_000)
        assert app.hits_to("/capture")[0].form["Digits"] == "1"
        first = page.locator("ol.timeline time").first.text_content() or ""
        assert re.fullmatch(r"\d\d:\d\d:\d\d", first), first  # a local clock time, not an ISO stamp
    finally:
        served.stop()
