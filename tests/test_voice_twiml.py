"""The TwiML builders, as pure functions: parse what they return."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from voice import twiml

SPEECH = twiml.Speech("en-GB", "Polly.Amy")


def parse(document: str) -> ET.Element:
    root = ET.fromstring(document)
    assert root.tag == "Response"
    return root


def test_say_and_hang_up_speaks_each_text_in_the_voice_then_hangs_up():
    root = parse(twiml.say_and_hang_up(["One.", "Two."], SPEECH))
    assert [(n.tag, n.text, n.get("voice"), n.get("language")) for n in root] == [
        ("Say", "One.", "Polly.Amy", "en-GB"), ("Say", "Two.", "Polly.Amy", "en-GB"), ("Hangup", None, None, None)]


def test_ask_gathers_inside_and_redirects_when_nothing_is_entered():
    root = parse(twiml.ask(["Press 1."], "/voice/confirm?thread=t-1", "/voice/code", SPEECH, with_speech=True))
    gather, redirect = list(root)
    assert (gather.tag, gather.get("action"), gather.get("numDigits"), gather.get("input")) == (
        "Gather", "/voice/confirm?thread=t-1", "1", "dtmf speech")
    assert gather.get("language") == "en-GB" and gather.find("Say").text == "Press 1."
    assert (redirect.tag, redirect.text, redirect.get("method")) == ("Redirect", "/voice/code", "POST")
    code = parse(twiml.ask(["Code?"], "/voice/code?attempt=1", "/voice/general", SPEECH, digits=6, timeout=8))[0]
    assert (code.get("numDigits"), code.get("finishOnKey"), code.get("timeout"), code.get("input")) == (
        "6", "#", "8", "dtmf")


def test_connect_dials_a_number_or_a_browser_with_a_whisper():
    root = parse(twiml.connect(["Connecting."], twiml.Target(phone="+14155550777"), "/voice/whisper?a=1",
                               "/voice/dial-done", None, SPEECH, recording_callback="/voice/recording"))
    dial = root.find("Dial")
    assert (dial.get("action"), dial.get("answerOnBridge"), dial.get("record")) == (
        "/voice/dial-done", "true", "record-from-answer-dual")
    assert (dial.get("recordingStatusCallback"), dial.get("recordingStatusCallbackMethod"),
            dial.get("recordingStatusCallbackEvent")) == ("/voice/recording", "POST", "completed absent")
    number = dial.find("Number")
    assert (number.text, number.get("url")) == ("+14155550777", "/voice/whisper?a=1")
    assert number.get("statusCallback") is None  # no ringing URL: no status callback on the agent's leg
    browser = parse(twiml.connect([], twiml.Target(client_identity="sam"), "/w", "/d", "+14155550100", SPEECH,
                                  ringing="/voice/agent-ringing?agent=sam"))
    assert browser.find("Dial/Client").text == "sam" and browser.find("Dial").get("callerId") == "+14155550100"
    client = browser.find("Dial/Client")
    assert (client.get("statusCallback"), client.get("statusCallbackEvent"), client.get("statusCallbackMethod")) == (
        "/voice/agent-ringing?agent=sam", "ringing", "POST")
    assert browser.find("Dial").get("record") is None  # do-not-record, Twilio's default


def test_whisper_accepts_with_1_and_hangs_up_otherwise():
    root = parse(twiml.whisper("Call from Jane. Press 1 to accept.", "/voice/whisper-accept", SPEECH))
    assert [n.tag for n in root] == ["Gather", "Hangup"]
    assert root.find("Gather").get("numDigits") == "1"
    assert list(parse(twiml.bridge())) == []


def test_voicemail_records_and_says_something_when_nothing_was_recorded():
    root = parse(twiml.voicemail(["Leave a message."], "/voice/voicemail?thread=t-1", SPEECH, "Nothing. Bye."))
    assert [n.tag for n in root] == ["Say", "Record", "Say", "Hangup"]
    record = root.find("Record")
    assert (record.get("action"), record.get("maxLength"), record.get("playBeep")) == (
        "/voice/voicemail?thread=t-1", "120", "true")


def test_hostile_text_stays_text():
    hostile = '</Say><Dial>+19005550000</Dial><Say>'
    root = parse(twiml.say_and_hang_up([hostile], SPEECH))
    assert root.find("Say").text == hostile and root.find("Dial") is None
