"""TwiML documents as the carrier reads them: XML parsed into verbs, or a TwimlError with Twilio's code."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

# Every TwiML voice verb Twilio runs; the carrier runs the first nine, and the rest as holding.py and notices.py say.
VERBS = {"Say", "Play", "Pause", "Gather", "Redirect", "Hangup", "Reject", "Record", "Dial",
         "Enqueue", "Leave", "Connect", "Start", "Stop", "Refer", "Pay"}
STREAMS = {"Stream", "Siprec", "Transcription", "Recording", "ConversationRelay"}
NESTABLE = {"Gather": {"Say", "Play", "Pause"},
            "Dial": {"Number", "Client", "Queue", "Conference", "Sip"},
            "Enqueue": {"Task"}, "Refer": {"Sip"}, "Pay": {"Prompt", "Parameter"},
            "Connect": {"Stream", "Room", "VirtualAgent", "ConversationRelay", "Autopilot", "Assistant",
                        "Conversation"},
            "Start": STREAMS, "Stop": STREAMS}


class TwimlError(Exception):
    """The document can't be run; code is Twilio's (12100 document parse failure)."""

    def __init__(self, message: str, code: int = 12100) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    text: str
    children: list[Node] = field(default_factory=list)

    def attr(self, name: str, default: str | None = None) -> str | None:
        return self.attrs.get(name, default)

    def number(self, name: str, default: float) -> float:
        try:
            value = float(self.attrs[name])
        except (KeyError, ValueError):
            return default
        return value if math.isfinite(value) and value >= 0 else default

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.attrs.get(name)
        return default if value is None else value.strip().lower() == "true"


@dataclass
class Document:
    """Verbs to run, and the URL they came from (the default target of Gather and Record)."""

    url: str | None
    verbs: list[Node]


def _node(element: ET.Element) -> Node:
    return Node(element.tag, dict(element.attrib), (element.text or "").strip(), [_node(c) for c in element])


def parse(text: str, url: str | None = None) -> Document:
    """Parse a TwiML document, refusing what Twilio would refuse to run."""
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as exc:
        raise TwimlError(f"the document is not well-formed XML: {exc}") from None
    if root.tag != "Response":
        raise TwimlError(f"the root element is <{root.tag}>, not <Response>")
    verbs = [_node(child) for child in root]
    for verb in verbs:
        if verb.tag not in VERBS:
            raise TwimlError(f"<{verb.tag}> is not a TwiML voice verb the carrier knows")
        allowed = NESTABLE.get(verb.tag, set())
        for child in verb.children:
            if child.tag not in allowed:
                raise TwimlError(f"<{child.tag}> can't be nested in <{verb.tag}>")
    return Document(url, verbs)
