"""Calls that run: ringing scripted phones, fetching and executing TwiML, status callbacks."""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from email.utils import format_datetime
from typing import Any

from carrier.callers import location_params
from carrier.legs import CallOver, Interrupted, Leg, PartyHungUp
from carrier.named import CALLBACK, TWIML
from carrier.notices import notification
from carrier.recordings import Recorder
from carrier.state import API_VERSION, SIP_CODES, Call, CarrierState, PhoneScript, utcnow
from carrier.twiml import Document, TwimlError, parse
from carrier.verbs import Verbs
from carrier.webhooks import Delivery, WebhookClient, WebhookFailed

log = logging.getLogger(__name__)

APPLICATION_ERROR = "We're sorry, an application error has occurred. Goodbye."
# How long detection takes for each verdict (a message end waits for the greeting to finish).
AMD_SECONDS = {"human": 2.0, "machine_start": 3.0, "fax": 3.0, "unknown": 5.0, "machine_end_beep": 6.0,
               "machine_end_silence": 8.0, "machine_end_other": 7.0}



class Engine(Verbs):
    """Runs every call on its own thread; status callbacks go out in order on one sender thread."""

    def __init__(self, state: CarrierState, base_url: str, scale: float = 1.0) -> None:
        self.state = state
        self.base_url = base_url.rstrip("/")
        self.scale = scale
        self.webhooks = WebhookClient(state.auth_token)
        self.legs: dict[str, Leg] = {}
        self.callback_order = "in-order"
        self.recorder = Recorder(self)
        self.outbox: queue.Queue[tuple[Call, str, str, dict[str, str], str] | None] = queue.Queue()
        self.sender = threading.Thread(target=self._send_callbacks, name="carrier-callbacks", daemon=True)
        self.sender.start()

    # --- bookkeeping -------------------------------------------------------------------------------------

    def sim_seconds(self, call: Call) -> float:
        return round((time.monotonic() - call.started) / self.scale, 2)

    def event(self, call: Call, kind: str, **details: Any) -> None:
        with self.state.lock:
            # at: call seconds since the call began; clock: the wall clock, for the page to show in local time
            call.events.append({"at": self.sim_seconds(call), "clock": time.time(), "kind": kind, **details})
            self.state.touch(call)

    def params(self, call: Call) -> dict[str, str]:
        params = {"CallSid": call.sid, "AccountSid": call.account_sid, "From": call.from_, "To": call.to,
                  "Caller": call.from_, "Called": call.to, "CallStatus": call.status, "ApiVersion": API_VERSION,
                  "Direction": call.direction}
        if call.parent_call_sid:
            params["ParentCallSid"] = call.parent_call_sid
        # No AnsweredBy here: Twilio documents it on the answer request (sync AMD), the AMD callback and the Calls
        # resource, not on every webhook nor on status callbacks.
        if call.stir_verstat:
            params["StirVerstat"] = call.stir_verstat
        params.update(location_params(call))
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
                self.record(call, "status", self.webhooks.send(url, method, params, role=CALLBACK))
            self.webhooks.forget(call.sid)  # the call is over: Twilio keeps a call's cookies only while it lasts
        else:
            self.record(call, kind, self.webhooks.send(url, method, params, role=CALLBACK))

    def record(self, call: Call, kind: str, delivery: Delivery) -> None:
        with self.state.lock:
            call.webhooks.append(delivery.record(kind, self.sim_seconds(call)))
            if delivery.error_code:
                call.errors.append({"code": delivery.error_code, "message": delivery.message, "url": delivery.url})
                call.notifications.append(notification(call, delivery.error_code, delivery.message,
                                                       url=delivery.url, method=delivery.method))
            self.state.touch(call)

    def finish(self, leg: Leg, status: str) -> None:
        if leg.call.ended:
            return
        self.recorder.stop(leg.call)  # before the completed callback, as Twilio reports the recording at the end
        self.set_status(leg, status, "completed")
        self.legs.pop(leg.call.sid, None)
        self.outbox.put((leg.call, "end", "", {}, ""))  # releases callbacks held in 'reordered' mode

    # --- starting calls ----------------------------------------------------------------------------------

    def start(self, call: Call, script: PhoneScript | None = None) -> Call:
        """Register the call and run it on its own thread."""
        leg = Leg(self, call, script or self.state.script_for(call.to))
        for url, role in ((call.url, TWIML), (call.fallback_url, TWIML), (call.status_callback, CALLBACK),
                          (call.async_amd_status_callback, CALLBACK)):
            self.webhooks.named.name(url, role)  # what the REST request or the number's settings named
        self.state.add_call(call)
        self.legs[call.sid] = leg
        if call.recording is not None:
            self.recorder.arm(call, call.recording)
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
        self.recorder.answered(call)
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
        if call.routed_to:
            # Twilio would run the application or trunk and never call the VoiceUrl; the carrier can run neither.
            self.event(call, "error", code=None, message=f"the number routes its calls to {call.routed_to}, not to "
                       "its VoiceUrl; the local carrier cannot run TwiML Apps or SIP trunks")
            self.finish(leg, "failed")
            return
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
        if hangup_after is None and leg.script.is_machine:
            hangup_after = 120  # a voicemail box stops recording
        limit = leg.call.time_limit if hangup_after is None else min(hangup_after, leg.call.time_limit)
        leg.hangup_at = leg.answered_at + limit * self.scale
        self.set_status(leg, "in-progress", "answered")
        self.event(leg.call, "answered", by="machine" if leg.script.is_machine else "human")

    def detect_machine(self, leg: Leg) -> dict[str, str]:
        """Answering-machine detection: sync adds AnsweredBy to the first request; async calls back later."""
        call = leg.call
        if call.machine_detection not in ("Enable", "DetectMessageEnd"):
            return {}
        answered_by = leg.script.detected_as(call.machine_detection)
        seconds = AMD_SECONDS[answered_by]
        if seconds > call.machine_detection_timeout:  # Twilio gives up at MachineDetectionTimeout: unknown
            answered_by, seconds = "unknown", call.machine_detection_timeout
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
