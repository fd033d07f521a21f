"""The hot TwiML answers are built as strings: byte for byte what twilio's VoiceResponse writes, hostile text too."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from twilio.twiml.voice_response import Gather, VoiceResponse

from voice import twiml

SPEECH = twiml.Speech("fr-FR", "Polly.Celine")
HOSTILE = ["", "Plain words.", "</Say><Dial>+19005550000</Dial><Say>", "A & B < C > D", "\"quoted\" and 'single'",
           "]]> <![CDATA[ x ]]>", "&amp; &#60; &lt;", "tab\there\r\nline", "ctrl \x01\x08\x0b\x1f\x7f end",
           "Zoë 中文 العربية \u202e reversed \u200b", "lone \ud800 surrogate", "\U0001f600 emoji"]
URLS = ["https://support.example.com/voice/confirm?thread=t-1&x=\"1\"<>", "https://h/voice/code?attempt=1",
        "https://h/p?q=\r\n\t&amp;", ""]


def _say(node: VoiceResponse | Gather, text: str, speech: twiml.Speech) -> None:
    node.say(text, language=speech.language, voice=speech.voice)


def dom_say_and_hang_up(texts: list[str], speech: twiml.Speech) -> str:
    """What voice/twiml.py built through VoiceResponse before it built strings: the oracle."""
    response = VoiceResponse()
    for text in texts:
        _say(response, text, speech)
    response.hangup()
    return str(response)


def dom_ask(texts: list[str], action: str, otherwise: str, speech: twiml.Speech, *, digits: int = 1,
            with_speech: bool = False, timeout: int = 5, before: tuple[str, ...] = ()) -> str:
    """The VoiceResponse oracle for twiml.ask."""
    response = VoiceResponse()
    for text in before:
        _say(response, text, speech)
    gather = Gather(action=action, method="POST", num_digits=digits, timeout=timeout,
                    input="dtmf speech" if with_speech else "dtmf", finish_on_key="#" if digits > 1 else "",
                    language=speech.language if with_speech else None,
                    hints="yes, no" if with_speech else None, action_on_empty_result=False)
    for text in texts:
        _say(gather, text, speech)
    response.append(gather)
    response.redirect(otherwise, method="POST")
    return str(response)


def _parses_like(ours: str, theirs: str) -> None:
    """Byte-identical, and where the oracle's document is well-formed XML, ours parses to the same tree."""
    assert ours == theirs
    try:
        expected = ET.fromstring(theirs.encode())
    except ET.ParseError:
        return  # a control character ElementTree writes as is: not XML either way, and speech_safe never lets one in
    parsed = ET.fromstring(ours.encode())
    assert ET.tostring(parsed) == ET.tostring(expected)
    assert parsed.find(".//Dial") is None


@pytest.mark.parametrize("text", HOSTILE)
def test_say_and_hang_up_is_what_voice_response_writes(text: str) -> None:
    _parses_like(twiml.say_and_hang_up([text, "Goodbye."], SPEECH), dom_say_and_hang_up([text, "Goodbye."], SPEECH))
    _parses_like(twiml.say_and_hang_up([], SPEECH), dom_say_and_hang_up([], SPEECH))


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("url", URLS)
def test_ask_is_what_voice_response_writes(text: str, url: str) -> None:
    for options in ({"with_speech": True, "before": (text,)}, {"digits": 6, "timeout": 8}, {"before": ("A", text)}):
        _parses_like(twiml.ask([text, "Press 1."], url, url + "&other", SPEECH, **options),
                     dom_ask([text, "Press 1."], url, url + "&other", SPEECH, **options))
    _parses_like(twiml.ask([], url, "", SPEECH), dom_ask([], url, "", SPEECH))


def test_customer_text_stays_text_in_the_greeting() -> None:
    hostile = 'x"/><Dial>+19005550000</Dial><Say a="'
    root = ET.fromstring(twiml.ask([hostile], "https://h/?a=" + hostile, "https://h/code", SPEECH, with_speech=True))
    gather = root.find("Gather")
    assert gather.find("Say").text == hostile and gather.get("action") == "https://h/?a=" + hostile
    assert root.find(".//Dial") is None
