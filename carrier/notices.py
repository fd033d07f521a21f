"""Twilio's debugger notifications, and the verbs the carrier cannot run (media streams, SIP, Refer, Pay): each
leaves a notification with Twilio's error code on the call, then the call goes on as Twilio's docs say."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin

from carrier.legs import Leg
from carrier.state import API_VERSION, Call, new_sid, rfc2822, utcnow
from carrier.twiml import Document, Node

if TYPE_CHECKING:
    from carrier.state import CarrierState

# The codes Twilio's error dictionary gives where the carrier cannot do what the TwiML asks.
STREAM_FAILED = 31920  # Stream - WebSocket - Handshake Error: no media connection was opened
SIP_DISABLED = 13246  # Dial: SIP dialing not enabled for this account
REFER_NOT_SIP = 13801  # Refer not allowed on non-SIP call legs
NO_PAY_CONNECTOR = 64004  # Pay: Invalid paymentConnector attribute in TwiML
SILENT_RECORDING = 16102  # Voice Recording: Unavailable because recording is silent


def notification(call: Call, code: int, message: str, warning: bool = False, url: str | None = None,
                 method: str | None = None, variables: dict[str, str] | None = None) -> dict[str, Any]:
    """A Notification resource as Twilio's API shows it (Calls/{CA}/Notifications/{NO}.json)."""
    sid, now = new_sid("NO"), rfc2822(utcnow())
    return {
        "account_sid": call.account_sid, "api_version": API_VERSION, "call_sid": call.sid,
        "date_created": now, "date_updated": now, "message_date": now, "error_code": str(code),
        "log": "1" if warning else "0",  # Twilio's log levels: 0 ERROR, 1 WARNING
        "message_text": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "request_method": method, "request_url": url,
        "request_variables": urlencode(variables) if variables else None, "response_body": None,
        "response_headers": None, "sid": sid,
        "uri": f"/{API_VERSION}/Accounts/{call.account_sid}/Calls/{call.sid}/Notifications/{sid}.json",
    }


class Notices:
    """Notifications, and the verbs the carrier does not simulate (a mixin of Verbs: it reaches calls through the
    engine's methods)."""

    state: CarrierState

    def notify(self, call: Call, code: int, message: str, warning: bool = False, url: str | None = None) -> None:
        """Leave a debugger notification on the call (and say so on its timeline)."""
        with self.state.lock:
            call.notifications.append(notification(call, code, message, warning, url, "POST" if url else None))
        self.event(call, "error", code=code, message=message, level="warning" if warning else "error")

    def _go_on(self, leg: Leg, verb: Node, document: Document, params: dict[str, str]) -> Document | None:
        """The verb's action with params when it names one (Connect, Pay), else the next verb."""
        action = verb.attr("action")
        if not action:
            return None
        return self.fetch(leg, urljoin(document.url or "", action), verb.attr("method", "POST") or "POST", params)

    def verb_connect(self, leg: Leg, verb: Node, document: Document) -> Document | None:
        nouns = ", ".join(f"<{child.tag}>" for child in verb.children) or "nothing"
        self.notify(leg.call, STREAM_FAILED, f"<Connect> with {nouns}: the local carrier opens no media stream, "
                    "room or agent connection")
        return self._go_on(leg, verb, document, {})

    def verb_start(self, leg: Leg, verb: Node, document: Document) -> None:
        """<Start> runs beside the call: its failure is notified and the call goes on at once."""
        for child in verb.children:
            self.notify(leg.call, STREAM_FAILED, f"<Start><{child.tag}>: the local carrier opens no media "
                        "streams, SIPREC sessions, real-time transcriptions or <Start> recordings")

    def verb_stop(self, leg: Leg, verb: Node, document: Document) -> None:
        """Nothing a <Start> began is running (the carrier starts none), so there is nothing to stop."""
        self.event(leg.call, "stopped", nouns=[child.tag for child in verb.children])

    def verb_refer(self, leg: Leg, verb: Node, document: Document) -> None:
        """Every carrier leg is a phone number or a client, none SIP: Twilio refuses Refer there."""
        self.notify(leg.call, REFER_NOT_SIP, "Refer not allowed on non-SIP call legs")

    def verb_pay(self, leg: Leg, verb: Node, document: Document) -> Document | None:
        """The carrier's account has no Pay Connector: <Pay> fails before it prompts, and its action hears so."""
        connector = verb.attr("paymentConnector", "Default")
        self.notify(leg.call, NO_PAY_CONNECTOR, f"Pay: Invalid paymentConnector attribute in TwiML: no Pay "
                    f"Connector named {connector!r} (the local carrier has none)")
        return self._go_on(leg, verb, document, {"Result": "payment-connector-error"})

    def refuse_sip(self, leg: Leg, noun: Node) -> None:
        """A <Dial><Sip>: the carrier's account dials no SIP, so that noun is not rung."""
        self.notify(leg.call, SIP_DISABLED, f"Dial: SIP dialing not enabled for this account (the local carrier "
                    f"dials no SIP): {noun.text}", warning=True)
