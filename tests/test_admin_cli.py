"""`flask numbers` and `flask agents`: set from options and files, apply a whole file, errors naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import Result
from flask.testing import FlaskCliRunner

from carrier.server import CarrierServer
from voice.twilio_client import make_client

SUPPORT = "+14155550100"
SALES = "+14155550200"

WHOLE_FILE = """
agents:
  sam: {name: Sam Agent, phone: +14155550777, status: available}
  alex:
    name: Alex
    client_identity: alex
numbers:
  +1 415 555 0100:
    label: Main line
    brand: Acme
    time_zone: America/New_York
    business_hours:
      mon: [[09:00, 12:00], [13:00, 17:00]]
    holidays: [2026-12-25]
    agents: [sam, alex]
    record_calls: yes
    max_attempts: 2
  +14155550200: {label: Sales, brand: Acme Sales, time_zone: Europe/London}
"""


@pytest.fixture
def runner(make_app: Any) -> FlaskCliRunner:
    return make_app(THREADLINE_ADMIN_KEYS=["admin-key"]).test_cli_runner()


def ok(runner: FlaskCliRunner, *args: str) -> Any:
    """Run a command that must succeed; its output parsed as JSON."""
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def fails(runner: FlaskCliRunner, *args: str) -> Result:
    """Run a command that must fail with exit code 1 and one error line."""
    result = runner.invoke(args=list(args))
    assert result.exit_code == 1, result.output
    assert result.stdout == "" and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    return result


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_agents_from_options(runner):
    sam = ok(runner, "agents", "set", "sam", "--name", "Sam", "--phone", "+1 415 555 0777")
    assert (sam["id"], sam["phone"], sam["status"]) == ("sam", "+14155550777", "offline")
    changed = ok(runner, "agents", "set", "sam", "--status", "available")
    assert (changed["name"], changed["phone"], changed["status"]) == ("Sam", "+14155550777", "available")
    assert ok(runner, "agents", "show", "sam") == changed
    assert [a["id"] for a in ok(runner, "agents", "list", "--json")["agents"]] == ["sam"]
    assert ok(runner, "agents", "remove", "sam") == {"removed": "sam"}
    assert ok(runner, "agents", "list", "--json") == {"agents": []}


def test_lists_read_as_tables_for_people(runner):
    assert runner.invoke(args=["agents", "list"]).stdout == "No agents yet: add one with `flask agents set`.\n"
    ok(runner, "agents", "set", "sam", "--name", "Sam Lee", "--phone", "+14155550777", "--status", "available")
    ok(runner, "agents", "set", "alex", "--name", "Alex", "--client-identity", "alex")
    ok(runner, "numbers", "set", SUPPORT, "--label", "Main line", "--brand", "Acme", "--time-zone", "UTC",
       "--agent", "sam", "--agent", "alex")
    assert runner.invoke(args=["agents", "list"]).stdout.splitlines() == [
        "Agent  Name     Status     Role   Rings",
        "alex   Alex     offline    agent  browser (alex)",
        "sam    Sam Lee  available  agent  +14155550777"]
    assert runner.invoke(args=["numbers", "list"]).stdout.splitlines() == [
        "Number        Label      Brand  Time zone  Agents     Calls",
        "+14155550100  Main line  Acme   UTC        sam, alex  not recorded"]


def test_an_admin_needs_only_an_id_and_a_name(runner):
    ada = ok(runner, "agents", "set", "ada", "--name", "Ada Park", "--role", "admin")
    assert (ada["role"], ada["phone"], ada["client_identity"]) == ("admin", None, None)
    demoted = runner.invoke(args=["agents", "set", "ada", "--role", "agent"])
    assert demoted.exit_code == 1 and "needs a phone or a browser identity" in demoted.stderr


def test_numbers_from_options_merge_onto_the_stored_config(runner):
    ok(runner, "agents", "set", "sam", "--name", "Sam", "--client-identity", "sam")
    created = ok(runner, "numbers", "set", "+1 (415) 555-0100", "--label", "Main", "--brand", "Acme",
                 "--time-zone", "America/Chicago", "--agent", "sam", "--record-calls", "--survey",
                 "--max-attempts", "4")
    assert created["number"] == SUPPORT and created["agents"] == ["sam"] and created["record_calls"] is True
    assert created["survey"] is True
    assert created["caller_id"] is None and created["max_attempts"] == 4

    changed = ok(runner, "numbers", "set", SUPPORT, "--brand", "Acme Support", "--no-record-calls",
                 "--caller-id", "+14155550199", "--caller-id-trust", "attested", "--no-survey")
    assert (changed["label"], changed["brand"], changed["record_calls"]) == ("Main", "Acme Support", False)
    assert (created["caller_id_trust"], changed["caller_id_trust"]) == ("any", "attested")
    assert changed["caller_id"] == "+14155550199" and changed["agents"] == ["sam"] and changed["survey"] is False
    assert ok(runner, "numbers", "show", "+14155550100") == changed
    assert [n["number"] for n in ok(runner, "numbers", "list", "--json")["numbers"]] == [SUPPORT]


def test_a_number_from_a_yaml_file_with_options_over_it(runner, tmp_path):
    path = write(tmp_path, "main.yaml", "label: Main\nbrand: Acme\ntime_zone: America/New_York\n"
                 "business_hours: {fri: [[09:00, 17:30]]}\ncaller_id: +14155550199\n")
    number = ok(runner, "numbers", "set", SUPPORT, "--file", path, "--language", "es-US")
    assert number["business_hours"]["fri"] == [["09:00", "17:30"]]
    assert number["caller_id"] == "+14155550199" and number["language"] == "es-US"
    json_path = write(tmp_path, "main.json", json.dumps({"label": "Main", "brand": "Other", "time_zone": "UTC"}))
    replaced = ok(runner, "numbers", "set", SUPPORT, "--file", json_path)
    assert replaced["brand"] == "Other" and replaced["business_hours"] is None


def test_apply_writes_a_whole_configuration(runner, tmp_path):
    applied = ok(runner, "numbers", "apply", "--file", write(tmp_path, "all.yaml", WHOLE_FILE))
    assert [a["id"] for a in applied["agents"]] == ["sam", "alex"]
    assert [n["number"] for n in applied["numbers"]] == [SUPPORT, SALES]
    main = ok(runner, "numbers", "show", SUPPORT)
    assert main["agents"] == ["sam", "alex"] and main["max_attempts"] == 2 and main["holidays"] == ["2026-12-25"]
    assert main["business_hours"]["mon"] == [["09:00", "12:00"], ["13:00", "17:00"]]
    assert ok(runner, "agents", "show", "sam")["phone"] == "+14155550777"


@pytest.mark.parametrize(("text", "line"), [
    (WHOLE_FILE.replace("agents: [sam, alex]", "agents: [sam, bob]"),
     "error: numbers.+1 415 555 0100.agents[1]: unknown agent 'bob'"),
    (WHOLE_FILE.replace("+1 415 555 0100:", "+1 415 555:"), "error: numbers.+1 415 555: "),
    (WHOLE_FILE.replace("+14155550200:", "(415) 555-0100:"), "error: numbers.(415) 555-0100: "),
    (WHOLE_FILE.replace("+14155550200:", "+1-415-555-0100:"), "is listed twice"),
    (WHOLE_FILE.replace("[13:00, 17:00]", "[11:00, 17:00]"),
     "error: numbers.+1 415 555 0100.business_hours.mon: ranges overlap at 11:00"),
    (WHOLE_FILE.replace("Europe/London", "Europe/Atlantis"), f"error: numbers.{SALES}.time_zone: unknown time zone"),
    (WHOLE_FILE.replace("client_identity: alex", "colour: red"), "error: agents.alex"),
    ("numbers: [1, 2]", "error: numbers: Input should be a valid dictionary"),
    ("numbers: {", "not valid YAML"),
    ("- just\n- a list\n", "expected a mapping"),
])
def test_a_bad_file_changes_nothing(runner, tmp_path, text, line):
    result = fails(runner, "numbers", "apply", "--file", write(tmp_path, "all.yaml", text))
    assert line in result.stderr
    assert ok(runner, "numbers", "list", "--json") == {"numbers": []}
    assert ok(runner, "agents", "list", "--json") == {"agents": []}


def test_errors_name_the_field_and_exit_1(runner, tmp_path):
    result = fails(runner, "numbers", "set", SUPPORT, "--label", "Main", "--brand", "Acme", "--time-zone", "UTC",
                   "--agent", "bob")
    assert result.stderr == "error: agents[0]: unknown agent 'bob'\n"
    assert fails(runner, "numbers", "set", SUPPORT, "--label", "Main").stderr.startswith("error: brand: ")
    assert fails(runner, "numbers", "show", "12").stderr.startswith("error: number: ")
    assert fails(runner, "numbers", "show", SUPPORT).stderr.startswith("error: number: no support number")
    assert fails(runner, "agents", "set", "sam!", "--name", "X").stderr.startswith("error: agent_id: ")
    assert "phone or a browser identity" in fails(runner, "agents", "set", "sam", "--name", "Sam").stderr
    missing = fails(runner, "numbers", "set", SUPPORT, "--file", str(tmp_path / "nope.yaml")).stderr
    assert missing.startswith("error: --file: ") and "nope.yaml" in missing

    ok(runner, "agents", "set", "sam", "--name", "Sam", "--client-identity", "sam")
    ok(runner, "numbers", "set", SUPPORT, "--label", "Main", "--brand", "Acme", "--time-zone", "UTC", "--agent", "sam")
    assert SUPPORT in fails(runner, "agents", "remove", "sam").stderr
    assert "TWILIO_ACCOUNT_SID" in fails(runner, "numbers", "sync", SUPPORT).stderr
    assert ok(runner, "numbers", "remove", SUPPORT) == {"removed": SUPPORT}
    assert fails(runner, "numbers", "remove", SUPPORT).stderr.startswith("error: number: ")


def test_sync_from_the_command_line(make_app):
    with CarrierServer(numbers=(SUPPORT,)) as carrier:
        sid, token = carrier.state.account_sid, carrier.state.auth_token
        app = make_app(TWILIO_ACCOUNT_SID=sid, TWILIO_AUTH_TOKEN=token, TWILIO_API_BASE_URL=carrier.url,
                       PUBLIC_BASE_URL="https://support.example.com")
        runner = app.test_cli_runner()
        ok(runner, "numbers", "set", SUPPORT, "--label", "Main", "--brand", "Acme", "--time-zone", "UTC")
        report = ok(runner, "numbers", "sync", SUPPORT)
        assert report["changes"]["voice_url"] == {"from": None, "to": "https://support.example.com/voice/incoming"}
        fetched = make_client(sid, token, carrier.url).incoming_phone_numbers(report["sid"]).fetch()
        assert fetched.status_callback == "https://support.example.com/voice/status"
        assert ok(runner, "numbers", "sync", SUPPORT)["changes"] == {}


def test_sync_refuses_a_number_on_an_application_until_forced(make_app):
    app_sid = "AP" + "a1" * 16
    with CarrierServer(numbers=(SUPPORT,)) as carrier:
        sid, token = carrier.state.account_sid, carrier.state.auth_token
        attached = requests.put(f"{carrier.url}/_carrier/numbers/{SUPPORT}", json={"voice_application_sid": app_sid},
                                timeout=5)
        assert attached.status_code == 200, attached.text
        app = make_app(TWILIO_ACCOUNT_SID=sid, TWILIO_AUTH_TOKEN=token, TWILIO_API_BASE_URL=carrier.url,
                       PUBLIC_BASE_URL="https://support.example.com")
        runner = app.test_cli_runner()
        ok(runner, "numbers", "set", SUPPORT, "--label", "Main", "--brand", "Acme", "--time-zone", "UTC")
        refused = fails(runner, "numbers", "sync", SUPPORT).stderr
        assert refused == (f"error: the Twilio number {SUPPORT} is attached to a TwiML App ({app_sid}); Twilio never "
                           "calls its Voice URL while it is. Sync again with --force to detach it.\n")
        twilio = make_client(sid, token, carrier.url)
        number = twilio.incoming_phone_numbers.list(phone_number=SUPPORT)[0]
        assert (number.voice_application_sid, number.voice_url) == (app_sid, None)

        report = ok(runner, "numbers", "sync", SUPPORT, "--force")
        assert report["changes"]["voice_application_sid"] == {"from": app_sid, "to": ""}
        assert report["changes"]["voice_url"] == {"from": None, "to": "https://support.example.com/voice/incoming"}
        fetched = twilio.incoming_phone_numbers(number.sid).fetch()
        assert (fetched.voice_application_sid, fetched.voice_url) == (
            None, "https://support.example.com/voice/incoming")
