"""TwiML documents Threadline answers with: pure functions of texts, voice settings and URLs."""

from __future__ import annotations

from dataclasses import dataclass

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse


@dataclass(frozen=True)
class Speech:
    """How Say speaks: the language and the voice."""

    language: str
    voice: str


@dataclass(frozen=True)
class Target:
    """Who a Dial rings: a phone number or a browser identity."""

    phone: str | None = None
    client_identity: str | None = None


FALLBACK_SPEECH = Speech("en-US", "Polly.Joanna")  # when no number says which language and voice

# The hot answers (greeting, code prompt, goodbye) are built as strings, exactly as VoiceResponse writes them through
# ElementTree (tests/test_voice_twiml_strings.py compares the two): a DOM per call cost more than the rest of the
# answer. Escaping is ElementTree's, so customer-typed text stays text.
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_ATTRIBUTE_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#13;",
                                    "\n": "&#10;", "\t": "&#09;"})


def _text(value: str) -> str:
    return value.translate(_TEXT_ESCAPES)


def _attribute(value: str | int | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value).translate(_ATTRIBUTE_ESCAPES)


def _element(name: str, inner: str = "", **attributes: str | int | bool | None) -> str:
    """One element as ElementTree writes it: attributes sorted, None left out, booleans in lower case."""
    pairs = "".join(f' {key}="{_attribute(value)}"' for key, value in sorted(attributes.items()) if value is not None)
    return f"<{name}{pairs}>{inner}</{name}>" if inner else f"<{name}{pairs} />"


def _said(text: str, speech: Speech) -> str:
    return _element("Say", _text(text), language=speech.language, voice=speech.voice)


def _document(inner: str) -> str:
    """The whole document; what UTF-8 cannot carry (a lone surrogate) becomes a character reference, as in
    ElementTree."""
    document = f"{_DECLARATION}<Response>{inner}</Response>"
    try:
        document.encode()
    except UnicodeEncodeError:
        document = document.encode(errors="xmlcharrefreplace").decode()
    return document


def _say(node: VoiceResponse | Gather, text: str, speech: Speech) -> None:
    node.say(text, language=speech.language, voice=speech.voice)


def say_and_hang_up(texts: list[str], speech: Speech) -> str:
    return _document("".join(_said(text, speech) for text in texts) + "<Hangup />")


def empty() -> str:
    """A document that does nothing: the answer to a callback whose body Twilio ignores."""
    return str(VoiceResponse())


def ask(texts: list[str], action: str, otherwise: str, speech: Speech, *, digits: int = 1,
        with_speech: bool = False, timeout: int = 5, before: tuple[str, ...] = ()) -> str:
    """Say `before` in full, then texts while gathering keys (and yes/no speech); with nothing, go to `otherwise`."""
    gather = _element("Gather", "".join(_said(text, speech) for text in texts), action=action, method="POST",
                      numDigits=digits, timeout=timeout, input="dtmf speech" if with_speech else "dtmf",
                      finishOnKey="#" if digits > 1 else "", language=speech.language if with_speech else None,
                      hints="yes, no" if with_speech else None, actionOnEmptyResult=False)
    return _document("".join(_said(text, speech) for text in before) + gather
                     + _element("Redirect", _text(otherwise), method="POST"))


def connect(texts: list[str], target: Target, whisper: str, action: str, caller_id: str | None, speech: Speech,
            *, timeout: int = 20, recording_callback: str | None = None, ringing: str | None = None) -> str:
    """Tell the caller, then ring the agent, who hears the whisper before being bridged; with `ringing`, Twilio
    posts the agent's leg's ringing there (its status callback, that event alone).

    With recording_callback the conversation is recorded (both sides, one channel each) and Twilio posts the
    recording's outcome there (completed, or absent when nothing was recorded).
    """
    response = VoiceResponse()
    for text in texts:
        _say(response, text, speech)
    recording = {"record": "record-from-answer-dual", "recording_status_callback": recording_callback,
                 "recording_status_callback_method": "POST",
                 "recording_status_callback_event": "completed absent"} if recording_callback else {}
    dial = Dial(action=action, method="POST", timeout=timeout, caller_id=caller_id, answer_on_bridge=True,
                **recording)
    progress = {"status_callback": ringing, "status_callback_event": "ringing",
                "status_callback_method": "POST"} if ringing else {}
    if target.client_identity:
        dial.client(target.client_identity, url=whisper, method="POST", **progress)
    else:
        dial.number(target.phone, url=whisper, method="POST", **progress)
    response.append(dial)
    return str(response)


def whisper(text: str, accept: str, speech: Speech) -> str:
    """What the agent hears on answering: who and why, and 1 to take the call; anything else declines."""
    response = VoiceResponse()
    gather = Gather(action=accept, method="POST", num_digits=1, timeout=6)
    _say(gather, text, speech)
    response.append(gather)
    response.hangup()
    return str(response)


def say_then_bridge(text: str, speech: Speech) -> str:
    """What a called party hears before being connected (a Number url document that ends)."""
    response = VoiceResponse()
    _say(response, text, speech)
    return str(response)


def bridge() -> str:
    """An empty document: the whisper ends and the agent is connected."""
    return str(VoiceResponse())


def voicemail(texts: list[str], action: str, speech: Speech, nothing_recorded: str, *, max_length: int = 120) -> str:
    """Invite a message and record it; Record goes to `action` with the recording, or falls through if silent."""
    response = VoiceResponse()
    for text in texts:
        _say(response, text, speech)
    response.record(action=action, method="POST", max_length=max_length, timeout=5, finish_on_key="#",
                    play_beep=True)
    _say(response, nothing_recorded, speech)
    response.hangup()
    return str(response)
