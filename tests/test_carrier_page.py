"""The dev phone page in a real browser: a person answers a call and presses a key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Page, expect

from carrier.server import CarrierServer
from tests.carrier_support import AGENT, CUSTOMER, SUPPORT, Served, VoiceApp, wait_until
from voice.twilio_client import make_client


@pytest.fixture
def carrier() -> Iterator[CarrierServer]:
    with CarrierServer(scale=0.005, numbers=(SUPPORT,)) as server:
        yield server


def test_a_person_answers_on_the_page_and_presses_1(carrier: CarrierServer, page: Page) -> None:
    app = VoiceApp(carrier.state.auth_token)
    served = Served(app.build())
    try:
        requests.put(f"{carrier.url}/_carrier/phones/{AGENT}", json={"answer": "busy"}, timeout=5)
        page.goto(f"{carrier.url}/_carrier/")
        page.get_by_label("Phone number (E.164)").fill(CUSTOMER)
        page.get_by_label("When called").select_option("manual")
        page.get_by_role("button", name="Save").click()
        wait_until(lambda: carrier.state.script_for(CUSTOMER).answer == "manual", message="the script saved")

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
