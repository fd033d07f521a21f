"""Where the carrier's REST API and webhooks once departed from Twilio (issue 14, items 4, 8 and 11): caller
location parameters, API keys, the bounds Twilio's document sets, number updates, DELETE and the sub-resources
each call advertises."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from carrier.server import CarrierServer
from tests.support.carrier import CUSTOMER, SUPPORT, VoiceApp, finished, script, serving, wait_until
from voice.twilio_client import RedirectingHttpClient

HOLD = "<Response><Pause length='600'/></Response>"
RECORD = "<Response><Record maxLength='2'/></Response>"
LONDON = "+442071838750"


@pytest.fixture
def voice_app(carrier: CarrierServer) -> Iterator[VoiceApp]:
    yield from serving(VoiceApp(carrier.state.auth_token))


def inbound(carrier: CarrierServer, caller: str) -> str:
    response = requests.post(f"{carrier.url}/_carrier/inbound", json={"from": caller, "to": SUPPORT}, timeout=5)
    assert response.status_code == 201, response.text
    return response.json()["sid"]


def test_inbound_webhooks_carry_where_the_numbers_are_and_the_caller_name_only_when_looked_up(
        carrier, twilio, voice_app):
    number = twilio.incoming_phone_numbers.list(phone_number=SUPPORT)[0]
    number.update(voice_url=f"{voice_app.url}/reject", status_callback=f"{voice_app.url}/status")
    finished(carrier, inbound(carrier, LONDON))
    first = voice_app.hits_to("/reject")[0].form
    assert (first["FromCountry"], first["CallerCountry"], first["FromCity"], first["FromState"]) == (
        "GB", "GB", "LONDON", "")
    assert (first["ToCountry"], first["CalledCountry"], first["ToCity"], first["ToState"], first["CalledState"]) == (
        "US", "US", "SAN FRANCISCO", "CA", "CA")
    assert first["FromZip"] == first["ToZip"] == first["CallerZip"] == first["CalledZip"] == ""
    assert "CallerName" not in first
    status = wait_until(lambda: voice_app.hits_to("/status"))[0].form  # status callbacks carry them too
    assert (status["FromCountry"], status["ToCountry"]) == ("GB", "US")

    script(carrier, CUSTOMER, label="JANE DOE")
    assert number.update(voice_caller_id_lookup=True).voice_caller_id_lookup is True
    sid = inbound(carrier, CUSTOMER)
    finished(carrier, sid)
    assert voice_app.hits_to("/reject")[-1].form["CallerName"] == "JANE DOE"
    assert twilio.calls(sid).fetch().caller_name == "JANE DOE"


def key_client(carrier: CarrierServer, sid: str, secret: str) -> Client:
    """twilio.rest.Client(api_key_sid, api_key_secret, account_sid), sent to the carrier."""
    client = Client(sid, secret, carrier.state.account_sid, http_client=RedirectingHttpClient(carrier.url))
    client.edge = client.region = None
    return client


def test_an_api_key_created_through_keys_authenticates_until_it_is_deleted(carrier, twilio):
    key = twilio.new_keys.create(friendly_name="production")
    assert key.sid.startswith("SK") and key.secret
    assert twilio.keys(key.sid).fetch().friendly_name == "production"
    assert [k.sid for k in twilio.keys.list()] == [key.sid]

    with_key = key_client(carrier, key.sid, key.secret)
    call = with_key.calls.create(to=CUSTOMER, from_=SUPPORT, twiml=HOLD)
    assert with_key.calls(call.sid).fetch().account_sid == carrier.state.account_sid
    with_key.calls(call.sid).update(status="completed")
    with pytest.raises(TwilioRestException) as standard:  # a Standard key cannot manage keys, as Twilio says
        with_key.keys(key.sid).fetch()
    assert (standard.value.status, standard.value.code) == (403, 20403)
    with pytest.raises(TwilioRestException) as wrong:
        key_client(carrier, key.sid, "not-the-secret").calls(call.sid).fetch()
    assert (wrong.value.status, wrong.value.code) == (401, 20003)

    assert twilio.keys(key.sid).delete() is True
    with pytest.raises(TwilioRestException) as revoked:
        with_key.calls(call.sid).fetch()
    assert (revoked.value.status, revoked.value.code) == (401, 20003)


@pytest.mark.parametrize(("params", "code"), [
    ({"timeout": 0}, 21208), ({"timeout": 1000}, 21208), ({"twiml": "<Response>" + " " * 4000 + "</Response>"}, 32018),
])
def test_calls_outside_the_documented_bounds_are_refused(twilio, params, code):
    with pytest.raises(TwilioRestException) as refused:
        twilio.calls.create(to=CUSTOMER, from_=SUPPORT, **{"twiml": HOLD, **params})
    assert (refused.value.status, refused.value.code) == (400, code)


@pytest.mark.parametrize("params", [{"page_size": 0}, {"page_size": 1001}, {"page_number": -1}, {"status": "bogus"},
                                    {"start_time": "yesterday"}])
def test_lists_refuse_what_the_document_bounds(twilio, params):
    with pytest.raises(TwilioException) as refused:  # the library's pages raise the plain kind, with the answer
        twilio.calls.page(**params)
    answer = refused.value.args[1]
    assert (answer.status_code, json.loads(answer.text)["code"]) == (400, 20001)


def test_updating_a_call_to_a_bogus_status_is_refused(twilio):
    sid = twilio.calls.create(to=CUSTOMER, from_=SUPPORT, twiml=HOLD).sid
    with pytest.raises(TwilioRestException) as refused:
        twilio.calls(sid).update(status="bogus")
    assert (refused.value.status, refused.value.code) == (400, 20001)
    twilio.calls(sid).update(status="completed")


def test_start_time_filters_to_the_utc_day(twilio):
    sid = twilio.calls.create(to=CUSTOMER, from_=SUPPORT, twiml=HOLD).sid
    wait_until(lambda: twilio.calls(sid).fetch().start_time)
    started = twilio.calls(sid).fetch().start_time
    other_second = started.replace(hour=0, minute=0, second=1) if started.hour else started.replace(hour=23)
    assert [c.sid for c in twilio.calls.list(start_time=other_second)] == [sid]
    assert twilio.calls.list(start_time=started + timedelta(days=1)) == []
    twilio.calls(sid).update(status="completed")


def test_a_number_update_keeps_every_field_twilios_document_lets_it_change(twilio):
    number = twilio.incoming_phone_numbers.list(phone_number=SUPPORT)[0]
    app, address = "AP" + "a1" * 16, "AD" + "c3" * 16
    updated = number.update(
        friendly_name="Support line", sms_url="https://example.com/sms", sms_method="GET",
        sms_fallback_url="https://example.com/sms-fallback", sms_fallback_method="GET", sms_application_sid=app,
        voice_application_sid=app, voice_caller_id_lookup=True, voice_receive_mode="fax", address_sid=address,
        emergency_address_sid=address, emergency_status="Active", bundle_sid="BU" + "d4" * 16,
        identity_sid="RI" + "e5" * 16, api_version="2010-04-01")
    again = twilio.incoming_phone_numbers(number.sid).fetch()
    for shown in (updated, again):
        assert (shown.friendly_name, shown.sms_url, shown.sms_method, shown.sms_fallback_url) == (
            "Support line", "https://example.com/sms", "GET", "https://example.com/sms-fallback")
        assert (shown.sms_application_sid, shown.voice_application_sid, shown.voice_caller_id_lookup) == (
            app, app, True)
        assert (shown.voice_receive_mode, shown.address_sid, shown.emergency_address_sid) == ("fax", address, address)
        assert (shown.emergency_status, shown.bundle_sid, shown.identity_sid) == (
            "Active", "BU" + "d4" * 16, "RI" + "e5" * 16)
    with pytest.raises(TwilioRestException) as refused:
        number.update(voice_receive_mode="telex")
    assert (refused.value.status, refused.value.code) == (400, 20001)


def test_calls_numbers_and_recordings_can_be_deleted(carrier, twilio):
    sid = twilio.calls.create(to=CUSTOMER, from_=SUPPORT, twiml=RECORD).sid
    with pytest.raises(TwilioRestException) as live:
        twilio.calls(sid).delete()
    assert (live.value.status, live.value.code) == (400, 20009)
    finished(carrier, sid)
    [recording] = wait_until(lambda: twilio.recordings.list())
    assert twilio.calls(sid).recordings(recording.sid).fetch().call_sid == sid
    assert twilio.recordings(recording.sid).delete() is True
    assert twilio.recordings.list() == [] and twilio.calls(sid).recordings.list() == []
    assert twilio.calls(sid).delete() is True
    with pytest.raises(TwilioRestException) as gone:
        twilio.calls(sid).fetch()
    assert gone.value.code == 20404

    number = twilio.incoming_phone_numbers.list(phone_number=SUPPORT)[0]
    assert twilio.incoming_phone_numbers(number.sid).delete() is True
    assert twilio.incoming_phone_numbers.list() == []
    with pytest.raises(TwilioRestException) as unowned:  # a released number places no more calls
        twilio.calls.create(to=CUSTOMER, from_=SUPPORT, twiml=HOLD)
    assert unowned.value.code == 21210


def test_account_recordings_and_a_calls_recordings_in_twilios_shapes(carrier, twilio):
    sids = [twilio.calls.create(to=CUSTOMER, from_=SUPPORT, twiml=RECORD).sid for _ in range(2)]
    for sid in sids:
        finished(carrier, sid)
    listed = wait_until(lambda: len(twilio.recordings.list()) == 2 and twilio.recordings.list())
    assert {r.call_sid for r in listed} == set(sids)
    assert [r.call_sid for r in twilio.recordings.list(call_sid=sids[0])] == [sids[0]]
    today = datetime.now(UTC).date()
    assert len(twilio.recordings.list(date_created_after=datetime.combine(today, datetime.min.time()))) == 2
    [own] = twilio.calls(sids[1]).recordings.list()
    assert (own.call_sid, own.track) == (sids[1], "both")
    assert own.uri.endswith(f"/Calls/{sids[1]}/Recordings/{own.sid}.json")


def test_each_call_serves_the_notifications_and_events_it_advertises(carrier, twilio, voice_app):
    sid = twilio.calls.create(to=CUSTOMER, from_=SUPPORT, url=f"{voice_app.url}/broken").sid
    finished(carrier, sid)
    advertised = twilio.calls(sid).fetch().subresource_uris
    assert set(advertised) == {"notifications", "recordings", "events"}
    for uri in advertised.values():
        response = requests.get(f"{carrier.url}{uri}", auth=(carrier.state.account_sid, carrier.state.auth_token),
                                timeout=5)
        assert response.status_code == 200, uri

    [note] = twilio.calls(sid).notifications.list()
    assert (note.error_code, note.log, note.call_sid) == ("11200", "0", sid)
    assert note.request_url == f"{voice_app.url}/broken" and note.more_info.endswith("/11200")
    assert twilio.calls(sid).notifications(note.sid).fetch().message_text == note.message_text
    assert [n.sid for n in twilio.notifications.list(log=0)] == [note.sid]
    assert twilio.notifications.list(log=1) == []
    assert twilio.notifications(note.sid).fetch().call_sid == sid

    events = twilio.calls(sid).events.list()
    assert events[0].request["url"] == f"{voice_app.url}/broken" and events[0].request["method"] == "POST"
    assert events[0].request["parameters"]["call_sid"] == sid and events[0].response["response_code"] == 500
