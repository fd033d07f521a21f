"""The TwiML verbs as the carrier performs them: Say, Play, Pause, Gather, Redirect, Hangup, Reject, Record, Dial
(queues and conferences in holding.py, what it does not simulate in notices.py)."""

from __future__ import annotations

import math
import threading
import time
from urllib.parse import urljoin

from carrier.holding import Holding
from carrier.legs import POLL, CallOver, DialOutcome, Interrupted, Leg, PartyHungUp, drain
from carrier.notices import SILENT_RECORDING, Notices
from carrier.recordings import RecordingPlan
from carrier.state import Call, Recording, new_sid
from carrier.twiml import Document, Node

SECONDS_PER_WORD = 0.35
PLAY_SECONDS = 3.0
KEY_SECONDS = 0.4


def _recording_params(recording: Recording) -> dict[str, str]:
    """What a Record or Dial action hears of the recording made."""
    return {"RecordingUrl": recording.media_url or "", "RecordingSid": recording.sid,
            "RecordingDuration": str(recording.duration)}


class Verbs(Notices, Holding):
    """The verb handlers the Engine runs documents with (a mixin: it reaches calls through the engine's methods)."""

    def speak(self, leg: Leg, node: Node, loop_default: int = 1, until: threading.Event | None = None) -> bool:
        """Perform a Say, Play or Pause; True when `until` (input from the page) cut it short, as barge-in does."""
        loops = int(node.number("loop", loop_default)) or 10
        for _ in range(loops):
            if node.tag == "Say":
                self.event(leg.call, "heard", verb="Say", text=node.text, voice=node.attr("voice"),
                           language=node.attr("language"))
                seconds = max(1, len(node.text.split())) * SECONDS_PER_WORD
            elif node.tag == "Play":
                if node.attr("digits"):
                    self.event(leg.call, "sent_digits", digits=node.attr("digits"))
                    continue
                self.event(leg.call, "heard", verb="Play", url=node.text)
                seconds = PLAY_SECONDS
            elif node.tag == "Pause":
                seconds = node.number("length", 1)
            else:
                return False
            started = time.monotonic()
            if leg.wait(seconds, until=until):
                self.event(leg.call, "barged_in", verb=node.tag,
                           after=round((time.monotonic() - started) / self.scale, 1))
                return True
            if node.tag == "Pause":
                return False
        return False

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
        live = leg.script.answer == "manual"  # a person at the page: their keys and words, as they come
        leg.listen(inputs if live else ())
        try:
            # Input during a nested Say or Play stops it (Twilio's bargeIn, on by default).
            until = leg.input_arrived if live and verb.flag("bargeIn", True) else None
            for child in verb.children:
                if self.speak(leg, child, until=until):
                    break
            entered = (self._manual_input(leg, timeout, num_digits, finish_on_key) if live
                       else leg.script.input_for(index, "dtmf" in inputs, "speech" in inputs))
        finally:
            leg.listen(())
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
            self.event(leg.call, "pressed", digits=digits + finished_on)
            if digits:
                params = {"Digits": digits, "FinishedOnKey": finished_on}
        elif entered:
            leg.wait(max(1, len(entered[1].split())) * SECONDS_PER_WORD)
            self.event(leg.call, "said", speech=entered[1])
            params = {"SpeechResult": entered[1], "Confidence": "0.92"}
        if not params:
            if not entered and not live:  # a live phone's silence has been waited already
                leg.wait(timeout)
            if not verb.flag("actionOnEmptyResult"):
                self.event(leg.call, "gather_timeout")
                return None
            params = {"Digits": "", "FinishedOnKey": ""}
        target = self._action(document, verb)
        if target is None:
            return None
        return self.fetch(leg, target, verb.attr("method", "POST") or "POST", params)

    def _manual_input(self, leg: Leg, timeout: float, num_digits: int,
                      finish_on_key: str) -> tuple[str, str] | None:
        """What a person at the page enters: words end the Gather at once; keys end it on finishOnKey, numDigits,
        or `timeout` real seconds after the last key."""
        digits = ""
        while not (finish_on_key and finish_on_key in digits) and not (num_digits and len(digits) >= num_digits):
            leg.input_arrived.clear()
            waiting = not (leg.manual_keys.empty() and leg.manual_speech.empty())
            if not waiting and not leg.wait(timeout / self.scale, until=leg.input_arrived):
                break
            words = drain(leg.manual_speech)
            if words and not digits:
                return "speech", words[0]
            digits += "".join(drain(leg.manual_keys))
        return ("dtmf", digits) if digits else None

    def verb_record(self, leg: Leg, verb: Node, document: Document) -> Document | None:
        max_length = verb.number("maxLength", 3600)
        if verb.flag("playBeep", True):
            self.event(leg.call, "heard", verb="Record", text="(beep)")
        spoken = min(leg.script.record_seconds, max_length)
        plan = RecordingPlan.for_record_verb(verb, document)
        sid, began = self.recorder.begin(leg.call, plan)
        hung_up = False
        started = time.monotonic()
        try:
            leg.wait(spoken)
            if spoken < max_length:
                leg.wait(verb.number("timeout", 5))
        except PartyHungUp:
            hung_up = True
        heard = min((time.monotonic() - started) / self.scale, spoken)
        if heard <= 0:
            # Twilio keeps no silent recording and does not request the action: the document goes on.
            self.recorder.absent(leg.call, plan, sid)
            self.notify(leg.call, SILENT_RECORDING, "Recording was detected as silent and not stored", warning=True)
            if hung_up:
                raise PartyHungUp
            return None
        recording = self.recorder.save(leg.call, plan, max(1, math.ceil(heard)), sid, began)
        if verb.flag("transcribe") or verb.attr("transcribeCallback"):
            callback = verb.attr("transcribeCallback")
            self.recorder.transcribe(leg.call, recording, leg.script.message or "",
                                     urljoin(document.url or "", callback) if callback else None,
                                     self.params(leg.call))
        params = _recording_params(recording)
        target = self._action(document, verb)
        if hung_up:
            if target:
                self.webhooks.send(target, verb.attr("method", "POST") or "POST",
                                   {**self.params(leg.call), **params, "Digits": "hangup"})
            raise PartyHungUp
        if target is None:
            return None
        return self.fetch(leg, target, verb.attr("method", "POST") or "POST", params)

    # --- Dial --------------------------------------------------------------------------------------------

    def verb_dial(self, leg: Leg, verb: Node, document: Document) -> Document | None:
        timeout = verb.number("timeout", 30)
        try:
            plan = RecordingPlan.for_dial(verb, document)
        except ValueError as exc:
            self.notify(leg.call, 13217, str(exc), warning=True)  # Twilio warns and dials unrecorded
            plan = None
        nouns = verb.children or [Node("Number", {}, verb.text)]
        joins = [noun for noun in nouns if noun.tag in ("Queue", "Conference")]
        children = []
        for noun in nouns:
            if noun.tag == "Sip":
                self.refuse_sip(leg, noun)
            if noun.tag not in ("Number", "Client"):
                continue
            identity = noun.text or next((c.text for c in noun.children if c.tag == "Identity"), "")
            to = noun.text if noun.tag == "Number" else f"client:{identity}"
            callback = noun.attr("statusCallback")  # only the noun's own: Twilio calls back only where asked
            default_events = "completed" if noun.tag == "Number" else ""  # <Client>'s default is no event at all
            child = Call(new_sid("CA"), leg.call.account_sid, to, verb.attr("callerId") or leg.call.from_,
                         "outbound-dial", parent_call_sid=leg.call.sid, timeout=timeout,
                         status_callback=urljoin(document.url or "", callback) if callback else None,
                         status_callback_method=noun.attr("statusCallbackMethod", "POST") or "POST",
                         status_callback_events=tuple((noun.attr("statusCallbackEvent") or default_events).split()))
            child.url = urljoin(document.url or "", noun.attr("url")) if noun.attr("url") else None
            child.method = noun.attr("method", "POST") or "POST"
            children.append(child)
        self.event(leg.call, "dial", to=[c.to for c in children], sids=[c.sid for c in children])
        running = self.recorder.arm(leg.call, plan) if plan else None
        time_limit = verb.number("timeLimit", 14400)
        if joins and joins[0].tag == "Queue":
            outcome = self.dial_queue(leg, joins[0], timeout, time_limit)
        elif joins:
            outcome = self.dial_conference(leg, joins[0], document, time_limit)
        else:
            outcome = self.dial(leg, children, timeout, time_limit)
        params = {"DialCallStatus": outcome.status, "DialCallDuration": str(outcome.duration),
                  "DialBridged": "true" if outcome.bridged else "false"}
        if running is not None:
            self.recorder.stop(leg.call, running)  # the dialled leg ended: so did its recording
            recording = self.state.recordings.get(running.sid)
            if recording is not None:
                params.update(_recording_params(recording))
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
        # Each leg ends itself at the timeout; the margin, in real seconds, keeps a busy machine from canceling
        # a leg that was about to report its own no-answer.
        margin = 1 + 2 / self.scale
        try:
            leg.wait((timeout + 1) / self.scale if manual else timeout + margin, until=done)
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
            except PartyHungUp:
                self.finish(child, "completed")  # hung up during the whisper: never bridged
            except CallOver:
                pass
            if child.call.ended:  # the called party hung up or declined before the bridge
                self.event(leg.call, "whisper_declined", sid=child.call.sid)
                return DialOutcome("no-answer", child.call, 0, False)
        bridged_at = time.monotonic()
        self.event(leg.call, "bridged", to=child.call.to, sid=child.call.sid)
        self.recorder.answered(leg.call)  # a Dial recording from answer starts with the conversation
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
