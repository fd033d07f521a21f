"""Calls that run: ringing scripted phones, fetching and executing TwiML, status callbacks."""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any
from urllib.parse import urljoin

from carrier.state import API_VERSION, SIP_CODES, Call, CarrierState, PhoneScript, Recording, new_sid, utcnow
from carrier.twiml import Document, Node, TwimlError, parse
from carrier.webhooks import Delivery, WebhookClient, WebhookFailed

log = logging.getLogger(__name__)

APPLICATION_ERROR = "We're sorry, an application error has occurred. Goodbye."
SECONDS_PER_WORD = 0.35
PLAY_SECONDS = 3.0
KEY_SECONDS = 0.4
AMD_SECONDS = {"human": 2.0, "machine_start": 3.0, "machine_end_beep": 6.0}
POLL = 0.01


class Interrupted(Exception):
    """A REST update or the page changed the call: ('redirect', url, method), ('twiml', text), ('hangup',)."""

    def __init__(self, action: tuple[str, ...]) -> None:
        super().__init__(action[0])
        self.action = action


class PartyHungUp(Exception):
    """The phone on this leg hung up."""


class CallOver(Exception):
    """The call has ended (its final status is already set)."""


@dataclass
class DialOutcome:
    status: str
    child: Call | None
    duration: int
    bridged: bool


class Leg:
    """A call being run: its record, its phone's script, and what may interrupt it."""

    def __init__(self, engine: Engine, call: Call, script: PhoneScript) -> None:
        self.engine = engine
        self.call = call
        self.script = script
        self.gathers = 0
        self.answered_at: float | None = None
        self.hangup_at: float | None = None
        self.pending: tuple[str, ...] | None = None
        self.guard = threading.Lock()
        self.signal = threading.Event()
        self.manual_answer = threading.Event()
        self.manual_keys: queue.Queue[str] = queue.Queue()
        self.key_pressed = threading.Event()

    def interrupt(self, *action: str) -> None:
        """From outside: ('redirect', url, method), ('twiml', text), ('cancel',) or ('hangup',)."""
        with self.guard:
            self.pending = action
            self.signal.set()

    def hang_up(self) -> None:
        """The phone on this leg hangs up now."""
        with self.guard:
            self.hangup_at = time.monotonic()
            self.signal.set()

    def check(self) -> None:
        """Raise if something ended or redirected this leg since the last check."""
        with self.guard:
            action, self.pending = self.pending, None
            self.signal.clear()
        if action is not None:
            raise Interrupted(action)
        if self.hangup_at is not None and time.monotonic() >= self.hangup_at:
            raise PartyHungUp

    def wait(self, seconds: float, until: threading.Event | None = None) -> bool:
        """Let `seconds` of call time pass (scaled); True as soon as `until` is set. Raises on interrupts."""
        deadline = time.monotonic() + seconds * self.engine.scale
        while True:
            self.check()
            if until is not None and until.is_set():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.hangup_at is not None:
                left = min(left, max(self.hangup_at - time.monotonic(), 0) + 0.0001)
            self.signal.wait(min(left, POLL) if until is not None else left)


class Engine:
    """Runs every call on its own thread; status callbacks go out in order on one sender thread."""

    def __init__(self, state: CarrierState, base_url: str, scale: float = 1.0) -> None:
        self.state = state
        self.base_url = base_url.rstrip("/")
        self.scale = scale
        self.webhooks = WebhookClient(state.auth_token)
        self.legs: dict[str, Leg] = {}
        self.callback_order = "in-order"
        self.outbox: queue.Queue[tuple[Call, str, str, dict[str, str], str] | None] = queue.Queue()
        self.sender = threading.Thread(target=self._send_callbacks, name="carrier-callbacks", daemon=True)
        self.sender.start()

    # --- bookkeeping -------------------------------------------------------------------------------------

    def sim_seconds(self, call: Call) -> float:
        return round((time.monotonic() - call.started) / self.scale, 2)

    def event(self, call: Call, kind: str, **details: Any) -> None:
        with self.state.lock:
            call.events.append({"at": self.sim_seconds(call), "kind": kind, **details})
            self.state.touch(call)

    def params(self, call: Call) -> dict[str, str]:
        params = {"CallSid": call.sid, "AccountSid": call.account_sid, "From": call.from_, "To": call.to,
                  "Caller": call.from_, "Called": call.to, "CallStatus": call.status, "ApiVersion": API_VERSION,
                  "Direction": call.direction}
        if call.parent_call_sid:
            params["ParentCallSid"] = call.parent_call_sid
        if call.answered_by:
            params["AnsweredBy"] = call.answered_by
        return params

    def set_status(self, leg: Leg, status: str, callback_event: str | None = None) -> None:
        call = leg.call
        with self.state.lock:
            call.status = status
            now = utcnow()
            dialling = callback_event == "initiated" or status in ("ringing", "in-progress")
            if dialling and call.start_time is None:
                call.start_time = now  # Twilio's start_time is when dialling began, not when answered
            if call.ended:
                call.end_time = now
                answered = leg.answered_at
                call.duration = math.ceil((time.monotonic() - answered) / self.scale) if answered else 0
            self.event(call, "status", status=status)
        if callback_event and callback_event in call.status_callback_events and call.status_callback:
            params = self.params(call)
            params.update(CallbackSource="call-progress-events", StatusCallbackEvent=callback_event,
                          Timestamp=format_datetime(utcnow()))
            if callback_event == "initiated":
                params["CallStatus"] = "initiated"
            if callback_event == "completed":
                params.update(CallDuration=str(call.duration), Duration=str(math.ceil((call.duration or 0) / 60)),
                              SipResponseCode=call.sip_response_code or SIP_CODES.get(call.status, "200"))
            with self.state.lock:
                params["SequenceNumber"] = str(call.callbacks_sent)
                call.callbacks_sent += 1
            self.outbox.put((call, "status", call.status_callback, params, call.status_callback_method))

    def _send_callbacks(self) -> None:
        """Deliver callbacks in order; in 'reordered' mode a call's status callbacks are held to its end,
        then delivered newest first, each twice, as a retrying network may."""
        held: dict[str, list[tuple[str, dict[str, str], str]]] = {}
        while (item := self.outbox.get()) is not None:
            try:
                self._deliver(item, held)
            except Exception:  # one bad callback must not stop the others
                log.exception("carrier: a callback could not be delivered")

    def _deliver(self, item: tuple[Call, str, str, dict[str, str], str],
                 held: dict[str, list[tuple[str, dict[str, str], str]]]) -> None:
        call, kind, url, params, method = item
        if kind == "status" and self.callback_order == "reordered":
            held.setdefault(call.sid, []).append((url, params, method))
        elif kind == "end":
            batch = list(reversed(held.pop(call.sid, [])))
            for url, params, method in batch + batch:
                self.record(call, "status", self.webhooks.send(url, method, params))
        else:
            self.record(call, kind, self.webhooks.send(url, method, params))

    def record(self, call: Call, kind: str, delivery: Delivery) -> None:
        with self.state.lock:
            call.webhooks.append(delivery.record(kind, self.sim_seconds(call)))
            if delivery.error_code:
                call.errors.append({"code": delivery.error_code, "message": delivery.message, "url": delivery.url})
            self.state.touch(call)

    def finish(self, leg: Leg, status: str) -> None:
        if leg.call.ended:
            return
        self.set_status(leg, status, "completed")
        self.legs.pop(leg.call.sid, None)
        self.outbox.put((leg.call, "end", "", {}, ""))  # releases callbacks held in 'reordered' mode

    # --- starting calls ----------------------------------------------------------------------------------

    def start(self, call: Call, script: PhoneScript | None = None) -> Call:
        """Register the call and run it on its own thread."""
        leg = Leg(self, call, script or self.state.script_for(call.to))
        self.state.add_call(call)
        self.legs[call.sid] = leg
        runner = self._run_inbound if call.direction == "inbound" else self._run_outbound
        threading.Thread(target=self._guard, args=(runner, leg), name=f"call-{call.sid}", daemon=True).start()
        return call

    def _guard(self, runner: Any, leg: Leg) -> None:
        try:
            runner(leg)
        except PartyHungUp:
            self.event(leg.call, "hangup", by="phone")
        except CallOver:
            pass
        except Interrupted as exc:
            if leg.answered_at is None and exc.action[0] in ("cancel", "hangup"):
                self.finish(leg, "canceled")
        except Exception as exc:  # the carrier never dies with a call: the call fails and says why
            self.event(leg.call, "error", code=0, message=f"carrier fault: {type(exc).__name__}: {exc}")
            self.finish(leg, "failed")
            raise
        finally:
            self.finish(leg, "completed")

    def _run_outbound(self, leg: Leg) -> None:
        call = leg.call
        self.set_status(leg, "queued", "initiated")
        if not self.ring(leg, call.timeout):
            return
        self.answer(leg)
        try:
            extra = self.detect_machine(leg)
            with self.state.lock:
                url, method, twiml = call.url, call.method, call.twiml
            if twiml is not None:
                document: Document | None = self.follow(leg, ("twiml", twiml), quiet=True)
            else:
                document = self.fetch(leg, url or "", method, extra)
        except Interrupted as exc:
            document = self.follow(leg, exc.action)
        if document is not None:
            self.execute(leg, document)

    def _run_inbound(self, leg: Leg) -> None:
        call = leg.call
        self.set_status(leg, "ringing", "ringing")
        if not call.url:
            self.event(call, "error", code=11200, message="the number has no VoiceUrl")
            self.finish(leg, "failed")
            return
        document = self.fetch(leg, call.url, call.method, {})
        self.execute(leg, document)

    # --- phones ------------------------------------------------------------------------------------------

    def ring(self, leg: Leg, timeout: float) -> bool:
        """Ring the leg's phone as its script says; True when answered, else the final status is set."""
        script = leg.script
        try:
            leg.check()
            if script.answer in ("failed", "unassigned"):
                leg.call.sip_response_code = SIP_CODES[script.answer]  # unassigned: no such subscriber
                self.finish(leg, "failed")
                return False
            if script.answer == "busy":
                leg.wait(1)
                self.finish(leg, "busy")
                return False
            self.set_status(leg, "ringing", "ringing")
            if script.answer == "manual":  # a person at the page needs real seconds, whatever the scale
                if leg.wait(timeout / self.scale, until=leg.manual_answer):
                    return True
                self.finish(leg, "no-answer")
                return False
            if script.answer == "no-answer" or script.ring_seconds >= timeout:
                leg.wait(timeout)
                self.finish(leg, "no-answer")
                return False
            leg.wait(script.ring_seconds)
            return True
        except Interrupted:
            self.finish(leg, "canceled")
            return False

    def answer(self, leg: Leg) -> None:
        with self.state.lock:  # update() decides redirect-or-rewrite on answered_at
            leg.answered_at = time.monotonic()
        hangup_after = leg.script.hangup_after
        if hangup_after is None and leg.script.answer == "machine":
            hangup_after = 120  # a voicemail box stops recording
        limit = leg.call.time_limit if hangup_after is None else min(hangup_after, leg.call.time_limit)
        leg.hangup_at = leg.answered_at + limit * self.scale
        self.set_status(leg, "in-progress", "answered")
        self.event(leg.call, "answered", by="machine" if leg.script.answer == "machine" else "human")

    def detect_machine(self, leg: Leg) -> dict[str, str]:
        """Answering-machine detection: sync adds AnsweredBy to the first request; async calls back later."""
        call = leg.call
        if call.machine_detection not in ("Enable", "DetectMessageEnd"):
            return {}
        if leg.script.answer != "machine":
            answered_by = "human"
        else:
            answered_by = "machine_start" if call.machine_detection == "Enable" else "machine_end_beep"
        seconds = AMD_SECONDS[answered_by]
        extra = {"AnsweredBy": answered_by, "MachineDetectionDuration": str(int(seconds * 1000))}
        if call.async_amd:
            def report() -> None:
                time.sleep(seconds * self.scale)
                call.answered_by = answered_by
                if call.async_amd_status_callback and not call.ended:
                    params = {"CallSid": call.sid, "AccountSid": call.account_sid, **extra}
                    self.outbox.put((call, "amd", call.async_amd_status_callback, params,
                                     call.async_amd_status_callback_method))
            threading.Thread(target=report, daemon=True).start()
            return {}
        leg.wait(seconds)
        call.answered_by = answered_by
        self.event(call, "machine_detection", answered_by=answered_by)
        return extra

    # --- TwiML -------------------------------------------------------------------------------------------

    def fetch(self, leg: Leg, url: str, method: str, extra: dict[str, str]) -> Document:
        """Fetch TwiML for the leg; on failure try the fallback URL, then end the call as Twilio does."""
        params = {**self.params(leg.call), **extra}
        try:
            document, delivery = self.webhooks.fetch_twiml(url, method, params)
            self.record(leg.call, "twiml", delivery)
            return document
        except WebhookFailed as failure:
            self.record(leg.call, "twiml", failure.delivery)
            self.event(leg.call, "error", code=failure.delivery.error_code, message=failure.delivery.message)
            fallback = leg.call.fallback_url
            if fallback and fallback != url:
                params.update(ErrorCode=str(failure.delivery.error_code), ErrorUrl=url)
                try:
                    document, delivery = self.webhooks.fetch_twiml(fallback, leg.call.fallback_method, params)
                    self.record(leg.call, "fallback", delivery)
                    return document
                except WebhookFailed as second:
                    self.record(leg.call, "fallback", second.delivery)
                    self.event(leg.call, "error", code=second.delivery.error_code, message=second.delivery.message)
        self.say_application_error(leg)
        raise CallOver

    def say_application_error(self, leg: Leg) -> None:
        if leg.answered_at is None:
            self.answer(leg)
        self.event(leg.call, "heard", verb="Say", text=APPLICATION_ERROR)
        self.finish(leg, "completed")

    def execute(self, leg: Leg, document: Document) -> None:
        """Run documents until one ends, hangs up, or the call is over."""
        current: Document | None = document
        while current is not None:
            try:
                current = self.run_document(leg, current)
            except Interrupted as exc:
                current = self.follow(leg, exc.action)

    def follow(self, leg: Leg, action: tuple[str, ...], quiet: bool = False) -> Document | None:
        """The next document after a live update: a redirect, inline TwiML; a hang-up ends the call."""
        if not quiet:
            self.event(leg.call, "updated", action=action[0])
        if action[0] == "redirect":
            return self.fetch(leg, action[1], action[2], {})
        if action[0] == "twiml":
            try:
                return parse(action[1])
            except TwimlError as exc:
                self.event(leg.call, "error", code=exc.code, message=str(exc))
                self.say_application_error(leg)
                raise CallOver from None
        self.finish(leg, "completed" if leg.answered_at else "canceled")
        raise CallOver

    def run_document(self, leg: Leg, document: Document) -> Document | None:
        for verb in document.verbs:
            if leg.answered_at is None and verb.tag != "Reject":
                self.answer(leg)  # an inbound call is picked up by its first verb
            handler = getattr(self, f"verb_{verb.tag.lower()}")
            result = handler(leg, verb, document)
            if result == "end":
                return None
            if isinstance(result, Document):
                return result
        if leg.answered_at is None:
            self.answer(leg)
        return None

    def speak(self, leg: Leg, node: Node, loop_default: int = 1) -> None:
        loops = int(node.number("loop", loop_default)) or 10
        for _ in range(loops):
            if node.tag == "Say":
                self.event(leg.call, "heard", verb="Say", text=node.text, voice=node.attr("voice"),
                           language=node.attr("language"))
                leg.wait(max(1, len(node.text.split())) * SECONDS_PER_WORD)
            elif node.tag == "Play":
                if node.attr("digits"):
                    self.event(leg.call, "sent_digits", digits=node.attr("digits"))
                    continue
                self.event(leg.call, "heard", verb="Play", url=node.text)
                leg.wait(PLAY_SECONDS)
            elif node.tag == "Pause":
                leg.wait(node.number("length", 1))
                return

    def verb_say(self, leg: Leg, verb: Node, document: Document) -> None:
        self.speak(leg, verb)

    verb_play = verb_say
    verb_pause = verb_say

    def verb_hangup(self, leg: Leg, verb: Node, document: Document) -> str:
        self.event(leg.call, "hangup", by="application")
        self.finish(leg, "completed")
        return "end"

    def verb_reject(self, leg: Leg, verb: Node, document: Document) -> str:
        if leg.answered_at is not None:
            return self.verb_hangup(leg, verb, document)
        reason = verb.attr("reason", "rejected")
        self.event(leg.call, "rejected", reason=reason)
        self.finish(leg, "busy" if reason == "busy" else "no-answer")
        return "end"

    def verb_redirect(self, leg: Leg, verb: Node, document: Document) -> Document:
        return self.fetch(leg, urljoin(document.url or "", verb.text), verb.attr("method", "POST") or "POST", {})

    def _action(self, document: Document, verb: Node) -> str | None:
        action = verb.attr("action")
        return urljoin(document.url or "", action) if action else document.url

    def verb_gather(self, leg: Leg, verb: Node, document: Document) -> Document | None:
        inputs = (verb.attr("input", "dtmf") or "dtmf").split()
        timeout = verb.number("timeout", 5)
        finish_on_key = verb.attr("finishOnKey", "#") or ""
        num_digits = int(verb.number("numDigits", 0))
        index, leg.gathers = leg.gathers, leg.gathers + 1
        for child in verb.children:
            self.speak(leg, child)
        entered = leg.script.input_for(index, "dtmf" in inputs, "speech" in inputs)
        if leg.script.answer == "manual" and "dtmf" in inputs:
            entered = self._manual_digits(leg, timeout, num_digits, finish_on_key)
        params: dict[str, str] = {}
        if entered and entered[0] == "dtmf":
            digits, finished_on = "", ""
            for key in entered[1]:
                leg.wait(KEY_SECONDS)
                if key == finish_on_key:
                    finished_on = key
                    break
                digits += key
                if num_digits and len(digits) >= num_digits:
                    break
            self.event(leg.call, "pressed", digits=entered[1])
            if digits:
                params = {"Digits": digits, "FinishedOnKey": finished_on}
        elif entered:
            leg.wait(max(1, len(entered[1].split())) * SECONDS_PER_WORD)
            self.event(leg.call, "said", speech=entered[1])
            params = {"SpeechResult": entered[1], "Confidence": "0.92"}
        if not params:
            if not entered:
                leg.wait(timeout)
            if not verb.flag("actionOnEmptyResult"):
                self.event(leg.call, "gather_timeout")
                return None
            params = {"Digits": "", "FinishedOnKey": ""}
        target = self._action(document, verb)
        if target is None:
            return None
        return self.fetch(leg, target, verb.attr("method", "POST") or "POST", params)

    def _manual_digits(self, leg: Leg, timeout: float, num_digits: int, finish_on_key: str) -> tuple[str, str] | None:
        """Keys a person presses on the page; the gather ends `timeout` real seconds after the last key."""
        digits = ""
        while not (finish_on_key and finish_on_key in digits) and not (num_digits and len(digits) >= num_digits):
            leg.key_pressed.clear()
            if leg.manual_keys.empty() and not leg.wait(timeout / self.scale, until=leg.key_pressed):
                break
            while not leg.manual_keys.empty():
                digits += leg.manual_keys.get()
        return ("dtmf", digits) if digits else None

    def verb_record(self, leg: Leg, verb: Node, document: Document) -> Document | None:
        max_length = verb.number("maxLength", 3600)
        if verb.flag("playBeep", True):
            self.event(leg.call, "heard", verb="Record", text="(beep)")
        spoken = min(leg.script.record_seconds, max_length)
        digits: str | None = None
        started = time.monotonic()
        try:
            leg.wait(spoken)
            if spoken < max_length:
                leg.wait(verb.number("timeout", 5))
        except PartyHungUp:
            digits = "hangup"
        duration = max(1, math.ceil(min((time.monotonic() - started) / self.scale, spoken)))
        recording = Recording(new_sid("RE"), leg.call.account_sid, leg.call.sid, duration)
        with self.state.lock:
            self.state.recordings[recording.sid] = recording
        recording_url = f"{self.base_url}/{API_VERSION}/Accounts/{leg.call.account_sid}/Recordings/{recording.sid}"
        self.event(leg.call, "recorded", recording_sid=recording.sid, duration=duration)
        params = {"RecordingUrl": recording_url, "RecordingSid": recording.sid,
                  "RecordingDuration": str(duration)}
        if digits:
            params["Digits"] = digits
        callback = verb.attr("recordingStatusCallback")
        if callback:
            status = {"AccountSid": leg.call.account_sid, "CallSid": leg.call.sid, "RecordingSid": recording.sid,
                      "RecordingUrl": recording_url, "RecordingStatus": "completed",
                      "RecordingDuration": str(duration), "RecordingChannels": "1", "RecordingSource": "RecordVerb",
                      "RecordingStartTime": format_datetime(recording.date_created)}
            self.outbox.put((leg.call, "recording", urljoin(document.url or "", callback), status,
                             verb.attr("recordingStatusCallbackMethod", "POST") or "POST"))
        target = self._action(document, verb)
        if digits == "hangup":
            if target:
                self.webhooks.send(target, verb.attr("method", "POST") or "POST",
                                   {**self.params(leg.call), **params})
            raise PartyHungUp
        if target is None:
            return None
        return self.fetch(leg, target, verb.attr("method", "POST") or "POST", params)

    # --- Dial --------------------------------------------------------------------------------------------

    def verb_dial(self, leg: Leg, verb: Node, document: Document) -> Document | None:
        timeout = verb.number("timeout", 30)
        nouns = verb.children or [Node("Number", {}, verb.text)]
        children = []
        for noun in nouns:
            if noun.tag not in ("Number", "Client"):
                self.event(leg.call, "error", code=13201, message=f"<{noun.tag}> is not supported by the carrier")
                continue
            identity = noun.text or next((c.text for c in noun.children if c.tag == "Identity"), "")
            to = noun.text if noun.tag == "Number" else f"client:{identity}"
            child = Call(new_sid("CA"), leg.call.account_sid, to, verb.attr("callerId") or leg.call.from_,
                         "outbound-dial", parent_call_sid=leg.call.sid, timeout=timeout,
                         status_callback=urljoin(document.url or "", noun.attr("statusCallback") or "") or None,
                         status_callback_method=noun.attr("statusCallbackMethod", "POST") or "POST",
                         status_callback_events=tuple((noun.attr("statusCallbackEvent") or "completed").split()))
            child.url = urljoin(document.url or "", noun.attr("url")) if noun.attr("url") else None
            child.method = noun.attr("method", "POST") or "POST"
            children.append(child)
        self.event(leg.call, "dial", to=[c.to for c in children], sids=[c.sid for c in children])
        outcome = self.dial(leg, children, timeout, verb.number("timeLimit", 14400))
        params = {"DialCallStatus": outcome.status, "DialCallDuration": str(outcome.duration),
                  "DialBridged": "true" if outcome.bridged else "false"}
        if outcome.child is not None:
            params["DialCallSid"] = outcome.child.sid
        caller_gone = leg.call.ended or (leg.hangup_at is not None and time.monotonic() >= leg.hangup_at)
        action = verb.attr("action")
        if caller_gone:
            if action:
                self.webhooks.send(urljoin(document.url or "", action), verb.attr("method", "POST") or "POST",
                                   {**self.params(leg.call), "CallStatus": "completed", **params})
            raise PartyHungUp
        if not action:
            return None
        return self.fetch(leg, urljoin(document.url or "", action), verb.attr("method", "POST") or "POST", params)

    def dial(self, leg: Leg, children: list[Call], timeout: float, time_limit: float) -> DialOutcome:
        """Ring every child at once; the first to answer (and accept any whisper) is bridged to the caller."""
        if not children:
            return DialOutcome("failed", None, 0, False)
        child_legs = [Leg(self, c, self.state.script_for(c.to)) for c in children]
        winner: list[Leg] = []
        abandoned = [False]
        remaining = [len(child_legs)]
        done = threading.Event()
        lock = threading.Lock()

        def ring(child: Leg) -> None:
            self.set_status(child, "queued", "initiated")
            picked_up = self.ring(child, timeout)
            with lock:
                remaining[0] -= 1
                if picked_up and not winner and not abandoned[0]:
                    winner.append(child)
                elif picked_up:  # someone else was first, or the caller left
                    self.finish(child, "canceled")
                if winner or remaining[0] == 0:
                    done.set()

        for child in child_legs:
            self.state.add_call(child.call)
            self.legs[child.call.sid] = child
            threading.Thread(target=ring, args=(child,), name=f"call-{child.call.sid}", daemon=True).start()
        # A person answering on the page needs real seconds, as in ring().
        manual = any(child.script.answer == "manual" for child in child_legs)
        try:
            leg.wait((timeout + 1) / self.scale if manual else timeout + 1, until=done)
        except (Interrupted, PartyHungUp):
            with lock:
                abandoned[0] = True
                for child in child_legs:
                    child.interrupt("cancel")
                if winner:
                    self.finish(winner[0], "canceled")
            raise
        with lock:
            abandoned[0] = True
        for child in child_legs:
            if child not in winner and not child.call.ended:
                child.interrupt("cancel")
        if not winner:
            statuses = {c.call.status for c in child_legs}
            status = statuses.pop() if len(statuses) == 1 else "no-answer"
            if status in ("canceled", "ringing", "queued"):
                status = "no-answer"
            return DialOutcome(status, child_legs[0].call if len(child_legs) == 1 else None, 0, False)
        winner_leg = winner[0]
        return self.connect(leg, winner_leg, time_limit)

    def connect(self, leg: Leg, child: Leg, time_limit: float) -> DialOutcome:
        """Answer the child, run its whisper, then bridge until one side hangs up."""
        try:
            return self._whisper_and_bridge(leg, child, time_limit)
        finally:
            self.finish(child, "completed")

    def _whisper_and_bridge(self, leg: Leg, child: Leg, time_limit: float) -> DialOutcome:
        self.answer(child)
        if child.call.url:
            self.event(leg.call, "heard", verb="Dial", text="(ringing while the called party hears a whisper)")
            try:
                whisper = self.fetch(child, child.call.url, child.call.method, {})
                self.execute(child, whisper)
            except (PartyHungUp, CallOver):
                pass
            if child.call.ended:  # the called party hung up or declined before the bridge
                self.event(leg.call, "whisper_declined", sid=child.call.sid)
                return DialOutcome("no-answer", child.call, 0, False)
        bridged_at = time.monotonic()
        self.event(leg.call, "bridged", to=child.call.to, sid=child.call.sid)
        self.event(child.call, "bridged", to=leg.call.from_ if leg.call.direction == "inbound" else leg.call.to,
                   sid=leg.call.sid)
        limit_at = bridged_at + time_limit * self.scale
        caller_left: BaseException | None = None
        try:
            while time.monotonic() < limit_at:
                try:
                    child.check()
                except (PartyHungUp, Interrupted):
                    self.event(child.call, "hangup", by="called party")
                    break
                leg.check()
                time.sleep(POLL)
        except (PartyHungUp, Interrupted) as exc:
            caller_left = exc
            self.event(leg.call, "hangup", by="caller" if isinstance(exc, PartyHungUp) else "update")
        duration = math.ceil((time.monotonic() - bridged_at) / self.scale)
        self.finish(child, "completed")
        if isinstance(caller_left, Interrupted):
            raise caller_left
        if caller_left is not None:
            self.finish(leg, "completed")
        return DialOutcome("completed", child.call, duration, True)

    # --- from outside --------------------------------------------------------------------------------------

    def update(self, call: Call, *, url: str | None = None, method: str = "POST", twiml: str | None = None,
               status: str | None = None) -> None:
        """A REST update: redirect the live call, replace its TwiML, cancel or hang it up."""
        with self.state.lock:
            leg = self.legs.get(call.sid)
            if leg is None:
                return
            unanswered = leg.answered_at is None
            if status == "completed":
                leg.interrupt("hangup")
            elif status == "canceled":
                if unanswered:  # Twilio ignores a cancel once the call is answered
                    leg.interrupt("cancel")
            elif unanswered and call.direction != "inbound":
                # Not yet answered: the new URL or TwiML is what runs when it is.
                call.url, call.method, call.twiml = (url, method, None) if url else (None, method, twiml)
            elif url:
                leg.interrupt("redirect", url, method)
            elif twiml is not None:
                leg.interrupt("twiml", twiml)

    def stop(self) -> None:
        for leg in list(self.legs.values()):
            leg.interrupt("hangup")
        self.outbox.put(None)
