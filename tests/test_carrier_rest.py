"""The carrier's REST API: Twilio's paths, auth, shapes (checked against Twilio's OpenAPI document) and errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from carrier.server import CarrierServer
from tests.support.carrier import CUSTOMER, SUPPORT, check, wait_until
from voice.twilio_client import make_client

HOLD = "<Response><Pause length='600'/></Response>"


@pytest.fixture
def api(carrier: CarrierServer) -> Any:
    session = requests.Session()
    session.auth = (carrier.state.account_sid, carrier.state.auth_token)
    base = f"{carrier.url}/2010-04-01/Accounts/{carrier.state.account_sid}"

    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        return session.request(method, f"{base}/{path}", timeout=5, **kwargs)

    return call


def test_every_call_response_validates_against_twilios_openapi_document(api):
    created = api("POST", "Calls.json", data={"To": CUSTOMER, "From": SUPPORT, "Twiml": HOLD,
                                              "StatusCallbackEvent": ["initiated", "answered"]})
    assert created.status_code == 201
    call = check(created, "Calls.json", "post")
    assert (call["status"], call["direction"], call["to"], call["from"]) == ("queued", "outbound-api", CUSTOMER,
                                                                            SUPPORT)
    sid = call["sid"]
    wait_until(lambda: api("GET", f"Calls/{sid}.json").json()["status"] == "in-progress")
    fetched = check(api("GET", f"Calls/{sid}.json"), "Calls/{Sid}.json", "get")
    assert fetched["start_time"] is not None
    listed = check(api("GET", "Calls.json", params={"To": CUSTOMER, "Status": "in-progress"}), "Calls.json", "get")
    assert [c["sid"] for c in listed["calls"]] == [sid]
    updated = check(api("POST", f"Calls/{sid}.json", data={"Status": "completed"}), "Calls/{Sid}.json", "post")
    assert updated["status"] == "completed" and updated["end_time"] is not None


def test_number_and_recording_responses_validate_too(api, carrier):
    numbers = check(api("GET", "IncomingPhoneNumbers.json"), "IncomingPhoneNumbers.json", "get")
    sid = numbers["incoming_phone_numbers"][0]["sid"]
    check(api("GET", f"IncomingPhoneNumbers/{sid}.json"), "IncomingPhoneNumbers/{Sid}.json", "get")
    updated = check(api("POST", f"IncomingPhoneNumbers/{sid}.json", data={"VoiceUrl": "https://example.com/voice"}),
                    "IncomingPhoneNumbers/{Sid}.json", "post")
    assert updated["voice_url"] == "https://example.com/voice"

    call = api("POST", "Calls.json", data={"To": CUSTOMER, "From": SUPPORT,
                                           "Twiml": "<Response><Record maxLength='2'/></Response>"}).json()
    wait_until(lambda: carrier.state.recordings, message="a recording")
    recording_sid = next(iter(carrier.state.recordings))
    recording = check(api("GET", f"Recordings/{recording_sid}.json"), "Recordings/{Sid}.json", "get")
    assert recording["call_sid"] == call["sid"]
    listed = check(api("GET", f"Calls/{call['sid']}/Recordings.json"), "Calls/{CallSid}/Recordings.json", "get")
    assert [r["sid"] for r in listed["recordings"]] == [recording_sid]


def test_the_twilio_library_round_trips_calls_and_numbers(twilio, carrier):
    before = datetime.now(UTC) - timedelta(seconds=2)
    sids = [twilio.calls.create(to=CUSTOMER, from_=SUPPORT, twiml=HOLD).sid for _ in range(3)]
    other = twilio.calls.create(to="+14155550999", from_=SUPPORT, twiml=HOLD).sid
    wait_until(lambda: all(twilio.calls(s).fetch().status == "in-progress" for s in [*sids, other]))

    assert {c.sid for c in twilio.calls.list(to=CUSTOMER, page_size=2)} == set(sids)  # follows next_page_uri
    assert {c.sid for c in twilio.calls.list(start_time_after=before.date().isoformat())} == {*sids, other}
    # By date, as Twilio documents it: a time of day later today still lists today's calls.
    later_today = datetime.now(UTC).replace(hour=23, minute=59, second=59)
    assert {c.sid for c in twilio.calls.list(start_time_after=later_today)} == {*sids, other}
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert twilio.calls.list(start_time_after=tomorrow) == []
    assert [c.sid for c in twilio.calls.list(from_=SUPPORT, to="+14155550999")] == [other]
    assert twilio.calls.list(status="completed") == []

    for sid in [*sids, other]:
        twilio.calls(sid).update(status="completed")
    assert {c.sid for c in twilio.calls.list(status="completed")} == {*sids, other}

    number = twilio.incoming_phone_numbers.list(phone_number=SUPPORT)[0]
    assert number.sid.startswith("PN") and number.phone_number == SUPPORT
    number.update(voice_url="https://support.example.com/voice/incoming", voice_method="POST",
                  status_callback="https://support.example.com/voice/status",
                  voice_fallback_url="https://support.example.com/voice/fallback", friendly_name="Acme US")
    again = twilio.incoming_phone_numbers(number.sid).fetch()
    assert (again.voice_url, again.status_callback, again.voice_fallback_url, again.friendly_name) == (
        "https://support.example.com/voice/incoming", "https://support.example.com/voice/status",
        "https://support.example.com/voice/fallback", "Acme US")


APP = "AP" + "a1" * 16
TRUNK = "TK" + "b2" * 16


def test_a_number_is_attached_to_an_application_or_a_trunk_and_detached_with_an_empty_sid(api, twilio):
    sid = twilio.incoming_phone_numbers.list(phone_number=SUPPORT)[0].sid
    path = f"IncomingPhoneNumbers/{sid}.json"
    attached = check(api("POST", path, data={"VoiceApplicationSid": APP}), "IncomingPhoneNumbers/{Sid}.json", "post")
    assert (attached["voice_application_sid"], attached["trunk_sid"]) == (APP, None)
    # Setting one deletes the other, as Twilio's document says.
    trunked = check(api("POST", path, data={"TrunkSid": TRUNK}), "IncomingPhoneNumbers/{Sid}.json", "post")
    assert (trunked["voice_application_sid"], trunked["trunk_sid"]) == (None, TRUNK)
    assert twilio.incoming_phone_numbers(sid).update(voice_application_sid=APP).trunk_sid is None

    detached = twilio.incoming_phone_numbers(sid).update(voice_application_sid="", trunk_sid="")  # sent empty
    assert (detached.voice_application_sid, detached.trunk_sid) == (None, None)
    listed = check(api("GET", "IncomingPhoneNumbers.json"), "IncomingPhoneNumbers.json", "get")
    assert listed["incoming_phone_numbers"][0]["voice_application_sid"] is None

    for data, code in (({"VoiceApplicationSid": "AP123"}, 21218), ({"TrunkSid": APP}, 20001),
                       ({"VoiceApplicationSid": APP, "TrunkSid": TRUNK}, 20001)):
        refused = api("POST", path, data=data)
        assert (refused.status_code, refused.json()["code"]) == (400, code), data
    assert twilio.incoming_phone_numbers(sid).fetch().voice_application_sid is None


@pytest.mark.parametrize(("params", "code", "message"), [
    ({"From": SUPPORT, "Url": "https://x.example/v"}, 21201, "No 'To' number is specified"),
    ({"To": CUSTOMER, "Url": "https://x.example/v"}, 21213, "No 'From' number is specified"),
    ({"To": CUSTOMER, "From": SUPPORT}, 21205, "Url parameter is required."),
    ({"To": CUSTOMER, "From": SUPPORT, "Url": "ftp://x"}, 21205, "Url is not a valid URL: ftp://x"),
    ({"To": "555-0123", "From": SUPPORT, "Url": "https://x.example/v"}, 21211, "555-0123"),
    ({"To": CUSTOMER, "From": "+14155550111", "Url": "https://x.example/v"}, 21210, "not yet verified"),
    ({"To": CUSTOMER, "From": SUPPORT, "Url": "https://x.example/v", "StatusCallbackEvent": "hung"}, 21626, "hung"),
])
def test_bad_calls_get_twilios_error_codes(twilio, params, code, message):
    kwargs = {"to": params.get("To", ""), "from_": params.get("From", ""), "url": params.get("Url"),
              "status_callback_event": params.get("StatusCallbackEvent")}
    with pytest.raises(TwilioRestException) as error:
        twilio.calls.create(**{k: v for k, v in kwargs.items() if v is not None})
    assert (error.value.status, error.value.code) == (400, code)
    assert message in error.value.msg


def test_wrong_credentials_and_unknown_resources(carrier, twilio):
    wrong = make_client(carrier.state.account_sid, "not-the-token", carrier.url)
    with pytest.raises(TwilioRestException) as denied:
        wrong.calls.create(to=CUSTOMER, from_=SUPPORT, twiml=HOLD)
    assert (denied.value.status, denied.value.code) == (401, 20003)
    with pytest.raises(TwilioRestException) as missing:
        twilio.calls("CA" + "0" * 32).fetch()
    assert (missing.value.status, missing.value.code) == (404, 20404)
    with pytest.raises(TwilioRestException) as missing:
        twilio.calls("CA" + "0" * 32).update(status="completed")
    assert missing.value.code == 20404
    response = requests.get(f"{carrier.url}/2010-04-01/Accounts/AC{'1' * 32}/Calls.json",
                            auth=(carrier.state.account_sid, carrier.state.auth_token), timeout=5)
    assert (response.status_code, response.json()["code"]) == (404, 20404)


def test_the_control_api_names_bad_fields(carrier):
    for body, field in (({"answer": "maybe"}, "answer"), ({"keys": "1"}, "keys"), ({"ring_seconds": -1},
                        "ring_seconds"), ({"colour": "red"}, "colour"), ({"keys": ["1a"]}, "keys"),
                        ({"answered_by": "machine"}, "answered_by"),
                        ({"stir_verstat": "passed <b>"}, "stir_verstat"), ({"stir_verstat": 1}, "stir_verstat")):
        response = requests.put(f"{carrier.url}/_carrier/phones/{CUSTOMER}", json=body, timeout=5)
        assert (response.status_code, response.json()["error"]["field"]) == (422, field)
    response = requests.post(f"{carrier.url}/_carrier/inbound", json={"from": CUSTOMER, "to": "+14155550000"},
                             timeout=5)
    assert (response.status_code, response.json()["error"]["field"]) == (422, "to")
    added = requests.put(f"{carrier.url}/_carrier/numbers/+14155550142", json={"friendly_name": "Sales"}, timeout=5)
    assert added.status_code == 200 and added.json()["sid"].startswith("PN")
    for body, field in (({"voice_application_sid": "AP1"}, "voice_application_sid"), ({"trunk_sid": APP}, "trunk_sid"),
                        ({"voice_application_sid": APP, "trunk_sid": TRUNK}, "trunk_sid")):
        response = requests.put(f"{carrier.url}/_carrier/numbers/+14155550142", json=body, timeout=5)
        assert (response.status_code, response.json()["error"]["field"]) == (422, field)
    trunked = requests.put(f"{carrier.url}/_carrier/numbers/+14155550142", json={"trunk_sid": TRUNK}, timeout=5)
    assert (trunked.json()["trunk_sid"], trunked.json()["friendly_name"]) == (TRUNK, "Sales")
    detached = requests.put(f"{carrier.url}/_carrier/numbers/+14155550142", json={"trunk_sid": None}, timeout=5)
    assert detached.json()["trunk_sid"] is None


def test_odd_requests_get_twilio_errors_not_pages(api, twilio):
    bad_timeout = api("POST", "Calls.json", data={"To": CUSTOMER, "From": SUPPORT, "Twiml": HOLD, "Timeout": "nan"})
    assert (bad_timeout.status_code, bad_timeout.json()["code"]) == (400, 21208)
    bad_page = api("GET", "Calls.json", params={"PageSize": "many"})
    assert (bad_page.status_code, bad_page.json()["code"]) == (400, 20001)
    nowhere = api("GET", "Conferences.json")
    assert (nowhere.status_code, nowhere.json()["code"]) == (404, 20404)
    refused = api("PUT", "Calls.json")
    assert (refused.status_code, refused.json()["code"]) == (405, 20001)
