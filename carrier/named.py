"""The URLs the carrier was told to request, by REST and control requests, number settings and TwiML; a request to
any other URL is a deviation from Twilio, which only ever calls URLs it was given."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urldefrag, urljoin

# What a URL is named for: TwiML to run (Url, VoiceUrl, FallbackUrl, action, url, Redirect) or a callback to notify
# (StatusCallback, recordingStatusCallback, ...); a request for one must not go to a URL named only as the other.
TWIML, CALLBACK = "twiml", "callback"


def role_of(name: str) -> str:
    """The role of a URL named by a parameter, setting or attribute of this name."""
    return CALLBACK if "callback" in name.lower() else TWIML


def bare(url: str) -> str:
    """The URL as requested: without its fragment (Twilio's connection overrides)."""
    return urldefrag(url)[0]


class NamedUrls:
    """Every URL named to the carrier, by role; and every request it sent to a URL not named for that role."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.named: dict[str, set[str]] = {TWIML: set(), CALLBACK: set()}
        self.unnamed: list[tuple[str, str]] = []  # (role, url) of each request to a URL nobody named for it

    def name(self, url: object, role: str) -> None:
        if isinstance(url, str) and url.lower().startswith(("http://", "https://")):
            with self.lock:
                self.named[role].add(bare(url))

    def name_values(self, values: Iterable[tuple[str, Any]]) -> None:
        """Parameters of a REST or control request: URLs by their parameter's name, and those in inline TwiML."""
        for key, value in values:
            if isinstance(value, Mapping):
                self.name_values(value.items())
            elif isinstance(value, str) and value.lstrip().startswith("<"):
                self.name_twiml(value, None)
            else:
                self.name(value, role_of(key))

    def name_twiml(self, text: str, url: str | None) -> None:
        """A TwiML document from url (None: inline): its own URL (the default action) and every URL in it."""
        try:
            root = ET.fromstring(text.strip())
        except ET.ParseError:
            return
        self.name(url, TWIML)
        for element in root.iter():
            for attribute, value in element.attrib.items():
                self.name(urljoin(url or "", value), role_of(attribute))
            if element.tag == "Redirect" and element.text:
                self.name(urljoin(url or "", element.text.strip()), TWIML)

    def check(self, url: str, role: str) -> None:
        """Note a request about to go to url for role, if nothing named it for that role."""
        with self.lock:
            if bare(url) not in self.named[role]:
                self.unnamed.append((role, bare(url)))
