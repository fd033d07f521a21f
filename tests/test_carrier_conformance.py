"""Every route of the carrier's REST API, exercised to a success and to an error, answers as Twilio's OpenAPI
document says: successes in the schema of their path, method and status (no field the document does not list),
errors in Twilio's error shape. A route added without its cases here fails the coverage test."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from flask import Flask

from carrier import rest
from carrier.server import CarrierServer
from tests.support.carrier import CUSTOMER, SUPPORT, finished, wait_until
from tests.support.oai import conforms, documented, shape

HOLD = "<Response><Pause length='600'/></Response>"
RECORD = "<Response><Record maxLength='2'/></Response>"
NOBODY = "CA" + "0" * 32
# Each route (its path under the account, as Twilio's document writes it) and method: the request that succeeds
# and the request that fails, as (path, parameters). Placeholders name what the setup made: {call} a live call,
# {ended} an ended call with a recording and a debugger notification, {recording}, {note}, {number}, {key}.
# DELETEs come last and remove what they name.
CASES: dict[tuple[str, str], tuple[tuple[str, dict[str, Any]], tuple[str, dict[str, Any]]]] = {
    ("POST", "Calls.json"): (("Calls.json", {"To": CUSTOMER, "From": SUPPORT, "Twiml": HOLD}),
                             ("Calls.json", {"From": SUPPORT, "Twiml": HOLD})),
    ("GET", "Calls.json"): (("Calls.json", {"Status": "in-progress", "PageSize": 1}),
                            ("Calls.json", {"PageSize": 0})),
    ("GET", "Calls/{Sid}.json"): (("Calls/{call}.json", {}), (f"Calls/{NOBODY}.json", {})),
    ("POST", "Calls/{Sid}.json"): (("Calls/{call}.json", {"Twiml": HOLD}), ("Calls/{call}.json", {"Status": "x"})),
    ("GET", "Calls/{CallSid}/Events.json"): (("Calls/{ended}/Events.json", {}), (f"Calls/{NOBODY}/Events.json", {})),
    ("GET", "Calls/{CallSid}/Notifications.json"): (("Calls/{ended}/Notifications.json", {"Log": 0}),
                                                    ("Calls/{ended}/Notifications.json", {"Log": 7})),
    ("GET", "Calls/{CallSid}/Notifications/{Sid}.json"): (("Calls/{ended}/Notifications/{note}.json", {}),
                                                          ("Calls/{call}/Notifications/{note}.json", {})),
    ("GET", "Notifications.json"): (("Notifications.json", {"MessageDate>": "2020-01-01"}),
                                    ("Notifications.json", {"MessageDate": "soon"})),
    ("GET", "Notifications/{Sid}.json"): (("Notifications/{note}.json", {}), ("Notifications/NO00.json", {})),
    ("GET", "Calls/{CallSid}/Recordings.json"): (("Calls/{ended}/Recordings.json", {}),
                                                 (f"Calls/{NOBODY}/Recordings.json", {})),
    ("GET", "Calls/{CallSid}/Recordings/{Sid}.json"): (("Calls/{ended}/Recordings/{recording}.json", {}),
                                                       ("Calls/{call}/Recordings/{recording}.json", {})),
    ("GET", "Recordings.json"): (("Recordings.json", {"CallSid": "{ended}"}),
                                 ("Recordings.json", {"DateCreated<": "later"})),
    ("GET", "Recordings/{Sid}.json"): (("Recordings/{recording}.json", {}), ("Recordings/RE00.json", {})),
    ("GET", "Recordings/{Sid}"): (("Recordings/{recording}.mp3", {}), ("Recordings/{recording}.ogg", {})),
    ("GET", "IncomingPhoneNumbers.json"): (("IncomingPhoneNumbers.json", {"PhoneNumber": SUPPORT}),
                                           ("IncomingPhoneNumbers.json", {"PageSize": 1001})),
    ("GET", "IncomingPhoneNumbers/{Sid}.json"): (("IncomingPhoneNumbers/{number}.json", {}),
                                                 ("IncomingPhoneNumbers/PN00.json", {})),
    ("POST", "IncomingPhoneNumbers/{Sid}.json"): (
        ("IncomingPhoneNumbers/{number}.json", {"SmsUrl": "https://example.com/sms", "VoiceCallerIdLookup": "true"}),
        ("IncomingPhoneNumbers/{number}.json", {"VoiceUrl": "ftp://example.com"})),
    ("POST", "Keys.json"): (("Keys.json", {"FriendlyName": "ci"}), ("Keys.json", {"_as_key": True})),
    ("GET", "Keys.json"): (("Keys.json", {}), ("Keys.json", {"Page": -1})),
    ("GET", "Keys/{Sid}.json"): (("Keys/{key}.json", {}), ("Keys/SK00.json", {})),
    ("POST", "Keys/{Sid}.json"): (("Keys/{key}.json", {"FriendlyName": "renamed"}), ("Keys/SK00.json", {})),
    ("DELETE", "Calls/{CallSid}/Recordings/{Sid}.json"): (("Calls/{ended}/Recordings/{recording}.json", {}),
                                                          ("Calls/{ended}/Recordings/{recording}.json", {})),
    ("DELETE", "Recordings/{Sid}.json"): (("Recordings/{second}.json", {}), ("Recordings/{second}.json", {})),
    ("DELETE", "Calls/{Sid}.json"): (("Calls/{ended}.json", {}), ("Calls/{call}.json", {})),
    ("DELETE", "IncomingPhoneNumbers/{Sid}.json"): (("IncomingPhoneNumbers/{number}.json", {}),
                                                    ("IncomingPhoneNumbers/{number}.json", {})),
    ("DELETE", "Keys/{Sid}.json"): (("Keys/{key}.json", {}), ("Keys/{key}.json", {})),
}


def served_routes() -> set[tuple[str, str]]:
    """(method, path shape) of every route the carrier's REST blueprint serves."""
    app = Flask(__name__)
    app.register_blueprint(rest.blueprint())
    return {(method, shape(rule.rule.split("/<account_sid>/", 1)[1]))
            for rule in app.url_map.iter_rules() if rule.endpoint.startswith(f"{rest.bp.name}.")
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}


def test_every_rest_route_the_carrier_serves_has_a_success_and_an_error_case():
    assert served_routes() == {(method, shape(path)) for method, path in CASES}
    for _, path in CASES:  # and each is a path of Twilio's document (the audio of a recording aside)
        assert documented(path if path.endswith(".json") else f"{path}.json"), path


def setup(carrier: CarrierServer, api: Any) -> dict[str, str]:
    """A live call, two ended ones (each with a recording, one with a notification), the number and an API key."""
    live = api("POST", "Calls.json", {"To": CUSTOMER, "From": SUPPORT, "Twiml": HOLD}).json()["sid"]
    ended = api("POST", "Calls.json", {"To": CUSTOMER, "From": SUPPORT, "Twiml": RECORD,
                                       "StatusCallback": f"{carrier.url}/nowhere"}).json()["sid"]
    other = api("POST", "Calls.json", {"To": CUSTOMER, "From": SUPPORT, "Twiml": RECORD}).json()["sid"]
    for sid in (ended, other):
        finished(carrier, sid)
    notes = wait_until(lambda: api("GET", f"Calls/{ended}/Notifications.json", {}).json()["notifications"])
    recordings = wait_until(lambda: len(carrier.state.recordings) == 2 and list(carrier.state.recordings.values()))
    number = api("GET", "IncomingPhoneNumbers.json", {}).json()["incoming_phone_numbers"][0]["sid"]
    key = api("POST", "Keys.json", {"FriendlyName": "setup"}).json()
    return {"call": live, "ended": ended, "note": notes[0]["sid"], "number": number, "key": key["sid"],
            "secret": key["secret"], "recording": next(r.sid for r in recordings if r.call_sid == ended),
            "second": next(r.sid for r in recordings if r.call_sid == other)}


def test_every_rest_answer_of_the_carrier_conforms_to_twilios_document(carrier):
    session = requests.Session()
    base = f"{carrier.url}/2010-04-01/Accounts/{carrier.state.account_sid}"

    def api(method: str, path: str, params: dict[str, Any], auth: tuple[str, str] | None = None
            ) -> requests.Response:
        credentials = auth or (carrier.state.account_sid, carrier.state.auth_token)
        where = "params" if method == "GET" else "data"
        return session.request(method, f"{base}/{path}", auth=credentials, timeout=5, **{where: params})

    made = setup(carrier, api)
    for (method, route), cases in CASES.items():
        for outcome, (path, params) in zip(("success", "error"), cases, strict=True):
            filled = {k: str(v).format(**made) for k, v in params.items() if k != "_as_key"}
            auth = (made["key"], made["secret"]) if params.get("_as_key") else None
            response = api(method, path.format(**made), filled, auth)
            assert (response.status_code < 400) == (outcome == "success"), (method, route, outcome, response.text)
            if route == "Recordings/{Sid}" and outcome == "success":
                assert response.headers["Content-Type"] == "audio/mpeg"
                continue
            conforms(response, route, method)


@pytest.mark.parametrize("path", ["Calls.json", "Keys.json"])
def test_an_unauthenticated_request_gets_twilios_error_shape(carrier, path):
    response = requests.get(f"{carrier.url}/2010-04-01/Accounts/{carrier.state.account_sid}/{path}", timeout=5)
    assert conforms(response, path, "GET")["code"] == 20003
