"""The carrier's records: phone numbers, phone scripts, calls and recordings, in memory behind one lock."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carrier.recordings import RecordingPlan

log = logging.getLogger(__name__)
API_VERSION = "2010-04-01"
ANSWERS = ("human", "machine", "busy", "no-answer", "failed", "unassigned", "manual")
# What Twilio's answering-machine detection may report; Enable reports the first four only.
ANSWERED_BY = ("human", "machine_start", "fax", "unknown", "machine_end_beep", "machine_end_silence",
               "machine_end_other")
# SIP response codes Twilio reports with a call's end: what a SIP peer would have answered.
SIP_CODES = {"completed": "200", "busy": "486", "no-answer": "487", "failed": "503", "unassigned": "404"}
FINAL_STATUSES = ("completed", "busy", "failed", "no-answer", "canceled")
KEEP_CALLS = 50  # the calls the carrier remembers; older ended ones are dropped with their legs
# What can take a number's calls instead of its VoiceUrl, and the form of its SID.
ROUTES = {"voice_application_sid": re.compile(r"^AP[0-9a-fA-F]{32}$"), "trunk_sid": re.compile(r"^TK[0-9a-fA-F]{32}$")}


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def rfc2822(moment: datetime | None) -> str | None:
    return format_datetime(moment) if moment else None


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class PhoneScript:
    """How a simulated phone behaves when called; unscripted phones answer as a human who presses nothing."""

    answer: str = "human"
    ring_seconds: float = 2.0
    keys: list[str | None] = field(default_factory=list)
    speech: list[str | None] = field(default_factory=list)
    hangup_after: float | None = None
    record_seconds: float = 4.0  # how long it speaks into a <Record>; 0: it stays silent
    message: str | None = None  # the words it says into a <Record>, what a transcription reads
    answered_by: str | None = None  # what AMD reports when the call asks for it; None: from `answer`
    stir_verstat: str | None = None  # sent as StirVerstat on the calls this phone places, as Twilio's verification
    label: str | None = None  # the name the dev phone shows for this phone

    def detected_as(self, machine_detection: str) -> str:
        """What AMD in this mode (Enable or DetectMessageEnd) reports for this phone."""
        detected = self.answered_by or ("machine_end_beep" if self.answer == "machine" else "human")
        if machine_detection == "Enable" and detected.startswith("machine_end"):
            return "machine_start"  # Enable stops at the greeting's start
        return detected

    @property
    def is_machine(self) -> bool:
        """Whether a voicemail box or a fax answers this phone."""
        return self.answer == "machine" or (self.answered_by or "human") not in ("human", "unknown")

    def input_for(self, index: int, dtmf: bool, speech: bool) -> tuple[str, str] | None:
        """What the phone enters at its index-th Gather: ('dtmf', keys), ('speech', words) or None."""
        if dtmf and index < len(self.keys) and self.keys[index]:
            return "dtmf", str(self.keys[index])
        if speech and index < len(self.speech) and self.speech[index]:
            return "speech", str(self.speech[index])
        return None


@dataclass
class IncomingNumber:
    sid: str
    account_sid: str
    phone_number: str
    friendly_name: str
    voice_url: str | None = None
    voice_method: str = "POST"
    voice_fallback_url: str | None = None
    voice_fallback_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    voice_application_sid: str | None = None
    trunk_sid: str | None = None
    voice_caller_id_lookup: bool = False  # on: inbound calls carry CallerName
    settings: dict[str, Any] = field(default_factory=dict)  # updatable fields kept and shown, not acted on (SMS...)
    date_created: datetime = field(default_factory=utcnow)
    date_updated: datetime = field(default_factory=utcnow)

    def routed_past_voice_url(self) -> str | None:
        """What takes the number's calls instead of its VoiceUrl (a TwiML App or a SIP trunk), if anything."""
        if self.trunk_sid:
            return f"the SIP trunk {self.trunk_sid}"
        if self.voice_application_sid:
            return f"the TwiML App {self.voice_application_sid}"
        return None

    def set_route(self, attribute: str, sid: str | None) -> None:
        """Attach the number to a TwiML App or SIP trunk (empty detaches); setting one deletes the other, as Twilio."""
        setattr(self, attribute, sid or None)
        if sid:
            setattr(self, next(other for other in ROUTES if other != attribute), None)

    def to_json(self) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/IncomingPhoneNumbers/{self.sid}.json"
        return {
            "account_sid": self.account_sid, "address_sid": None, "address_requirements": "none",
            "api_version": API_VERSION, "beta": False,
            "capabilities": {"voice": True, "sms": False, "mms": False, "fax": False},
            "date_created": rfc2822(self.date_created), "date_updated": rfc2822(self.date_updated),
            "friendly_name": self.friendly_name, "identity_sid": None, "phone_number": self.phone_number,
            "origin": "twilio", "sid": self.sid, "sms_application_sid": None, "sms_fallback_method": "POST",
            "sms_fallback_url": None, "sms_method": "POST", "sms_url": None,
            "status_callback": self.status_callback, "status_callback_method": self.status_callback_method,
            "trunk_sid": self.trunk_sid, "uri": uri, "voice_receive_mode": "voice",
            "voice_application_sid": self.voice_application_sid,
            "voice_caller_id_lookup": self.voice_caller_id_lookup, "voice_fallback_method": self.voice_fallback_method,
            "voice_fallback_url": self.voice_fallback_url, "voice_method": self.voice_method,
            "voice_url": self.voice_url, "emergency_status": "Inactive", "emergency_address_sid": None,
            "emergency_address_status": "unregistered", "bundle_sid": None, "status": "in-use", "type": "local",
            **self.settings,
        }


@dataclass
class Recording:
    sid: str
    account_sid: str
    call_sid: str
    duration: int
    source: str = "RecordVerb"  # DialVerb, OutboundAPI or RecordVerb
    channels: int = 1
    media_url: str | None = None
    date_created: datetime = field(default_factory=utcnow)  # when it began

    def to_json(self) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Recordings/{self.sid}.json"
        return {
            "account_sid": self.account_sid, "api_version": API_VERSION, "call_sid": self.call_sid,
            "conference_sid": None, "date_created": rfc2822(self.date_created),
            "date_updated": rfc2822(self.date_created), "start_time": rfc2822(self.date_created),
            "duration": str(self.duration), "sid": self.sid, "price": None, "price_unit": "USD",
            "status": "completed", "channels": self.channels, "source": self.source, "error_code": None, "uri": uri,
            "encryption_details": None, "subresource_uris": {}, "media_url": self.media_url,
        }

    def to_call_json(self) -> dict[str, Any]:
        """The recording as a call's Recordings list shows it (Twilio's call_recording shape)."""
        shown = {key: value for key, value in self.to_json().items() if key not in ("subresource_uris", "media_url")}
        return {**shown, "track": "both",
                "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.call_sid}/Recordings/{self.sid}.json"}


@dataclass
class ApiKey:
    """A Standard API key: its SID and secret authenticate like the account's own credentials, Keys excepted."""

    sid: str
    friendly_name: str
    secret: str
    date_created: datetime = field(default_factory=utcnow)
    date_updated: datetime = field(default_factory=utcnow)

    def to_json(self, with_secret: bool = False) -> dict[str, Any]:
        shown = {"sid": self.sid, "friendly_name": self.friendly_name, "date_created": rfc2822(self.date_created),
                 "date_updated": rfc2822(self.date_updated)}
        return {**shown, "secret": self.secret} if with_secret else shown


@dataclass
class Call:
    """A call leg as the REST API shows it, plus what the carrier saw happen on it."""

    sid: str
    account_sid: str
    to: str
    from_: str
    direction: str  # inbound | outbound-api | outbound-dial
    parent_call_sid: str | None = None
    phone_number_sid: str | None = None
    routed_to: str | None = None  # inbound: the TwiML App or SIP trunk that takes the call instead of the VoiceUrl
    status: str = "queued"
    answered_by: str | None = None
    stir_verstat: str | None = None
    url: str | None = None
    method: str = "POST"
    twiml: str | None = None
    fallback_url: str | None = None
    fallback_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    status_callback_events: tuple[str, ...] = ("completed",)
    recording: RecordingPlan | None = None  # REST Record=true: how the whole call is recorded, from its answer
    machine_detection: str | None = None
    async_amd: bool = False
    async_amd_status_callback: str | None = None
    async_amd_status_callback_method: str = "POST"
    machine_detection_timeout: float = 30  # seconds before AMD gives up and answers `unknown`
    timeout: float = 60
    time_limit: float = 14400
    date_created: datetime = field(default_factory=utcnow)
    date_updated: datetime = field(default_factory=utcnow)
    start_time: datetime | None = None
    end_time: datetime | None = None
    duration: int | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    # Twilio's debugger notifications for this call, each with the Notification resource's fields (notices.py)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    caller_name: str | None = None  # inbound, with the number's caller-name lookup on: what the lookup found
    callbacks_sent: int = 0
    sip_response_code: str | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def ended(self) -> bool:
        return self.status in FINAL_STATUSES

    def to_json(self) -> dict[str, Any]:
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}"
        return {
            "sid": self.sid, "date_created": rfc2822(self.date_created), "date_updated": rfc2822(self.date_updated),
            "parent_call_sid": self.parent_call_sid, "account_sid": self.account_sid, "to": self.to,
            "to_formatted": self.to, "from": self.from_, "from_formatted": self.from_,
            "phone_number_sid": self.phone_number_sid, "status": self.status,
            "start_time": rfc2822(self.start_time), "end_time": rfc2822(self.end_time),
            "duration": None if self.duration is None else str(self.duration), "price": None, "price_unit": "USD",
            "direction": self.direction, "answered_by": self.answered_by, "api_version": API_VERSION,
            "forwarded_from": None, "group_sid": None, "caller_name": self.caller_name, "queue_time": "0",
            "trunk_sid": None,
            "uri": f"{base}.json",
            "subresource_uris": {name: f"{base}/{name.title()}.json" for name in
                                 ("notifications", "recordings", "events")},
        }


class CarrierState:
    """Every record the carrier keeps; all reads and writes go through the lock."""

    def __init__(self, account_sid: str, auth_token: str, phones_file: Path | None = None,
                 keep_calls: int = KEEP_CALLS) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.lock = threading.RLock()
        self.numbers: dict[str, IncomingNumber] = {}  # by sid
        self.phones: dict[str, PhoneScript] = {}  # by E.164 or client:identity
        self.you: str | None = None  # the dev phone page's own phone: its calls take the page's keys and speech
        # Client identities an agent desk's browser phone registered, each until a time.monotonic() (softphone.py)
        self.desks: dict[str, float] = {}
        self.phones_file = phones_file
        self.keep_calls = keep_calls
        self.calls: dict[str, Call] = {}  # by sid, in creation order
        self.recordings: dict[str, Recording] = {}
        self.transcriptions: dict[str, dict[str, Any]] = {}  # by sid, with the Transcription resource's fields
        self.keys: dict[str, ApiKey] = {}  # API keys by SID
        self.changed = threading.Condition(self.lock)  # notified whenever a call changes, for the page

    def add_number(self, phone_number: str, friendly_name: str | None = None) -> IncomingNumber:
        with self.lock:
            existing = self.number_by_phone(phone_number)
            if existing:
                return existing
            number = IncomingNumber(new_sid("PN"), self.account_sid, phone_number, friendly_name or phone_number)
            self.numbers[number.sid] = number
            return number

    def number_by_phone(self, phone_number: str) -> IncomingNumber | None:
        with self.lock:
            return next((n for n in self.numbers.values() if n.phone_number == phone_number), None)

    def script_for(self, address: str) -> PhoneScript:
        """The phone's script; the page's own phone ("you"), and a client identity a desk's browser phone registered,
        always ring and listen at their page."""
        with self.lock:
            script = self.phones.get(address) or PhoneScript()
            at_desk = address.startswith("client:") and self.desks.get(address[7:], 0) > time.monotonic()
            return replace(script, answer="manual") if address == self.you or at_desk else script

    def label_of(self, address: str) -> str | None:
        """What the dev phone calls this address: "You", a phone's label or a number's friendly name."""
        with self.lock:
            if address == self.you:
                return "You"
            script = self.phones.get(address)
            if script is not None and script.label:
                return script.label
            number = self.number_by_phone(address)
            return number.friendly_name if number and number.friendly_name != address else None

    def load_phones(self) -> None:
        """Read the scripted phones and the page's own phone from the phones file, if there is one."""
        if self.phones_file is None or not self.phones_file.exists():
            return
        try:
            saved = json.loads(self.phones_file.read_text())
            you, phones = saved.get("you"), {a: PhoneScript(**script) for a, script in saved.get("phones", {}).items()}
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("carrier: %s is not a phones file this carrier wrote (%s); starting without it",
                        self.phones_file, exc)
            return
        with self.lock:
            self.you, self.phones = you, phones

    def save_phones(self) -> None:
        """Write the scripted phones and the page's own phone to the phones file (atomically), if there is one."""
        if self.phones_file is None:
            return
        with self.lock:
            saved = {"you": self.you, "phones": {address: asdict(s) for address, s in self.phones.items()}}
            self.phones_file.parent.mkdir(parents=True, exist_ok=True)
            partial = self.phones_file.with_name(self.phones_file.name + ".partial")
            partial.write_text(json.dumps(saved, indent=2) + "\n")
            os.replace(partial, self.phones_file)

    def add_call(self, call: Call) -> Call:
        with self.lock:
            self.calls[call.sid] = call
            if call.parent_call_sid is None:
                self._prune()
            self.changed.notify_all()
            return call

    def _prune(self) -> None:
        """Keep the newest `keep_calls` calls: older ended ones go, with their legs."""
        if len(self.calls) <= self.keep_calls:
            return  # legs included, no more calls than that: nothing to look through
        top = [c for c in self.calls.values() if c.parent_call_sid is None]
        excess = len(top) - self.keep_calls
        for old in top:
            if excess <= 0:
                break
            legs = [c for c in self.calls.values() if c.parent_call_sid == old.sid]
            if old.ended and all(leg.ended for leg in legs):
                for gone in (old, *legs):
                    del self.calls[gone.sid]
                excess -= 1

    def touch(self, call: Call) -> None:
        with self.lock:
            call.date_updated = utcnow()
            self.changed.notify_all()
