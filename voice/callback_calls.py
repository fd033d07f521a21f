"""Twilio's webhooks for callback calls: the customer answers, hears why we call, and chooses."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from flask import Blueprint, Response, request

from callbacks import dialer, lifecycle
from callbacks.lifecycle import claim_token
from callbacks.outcomes import FINAL_STATUSES, CallFacts, CallStatus, Outcome, classify, is_machine, leaves_message
from callbacks.schemas import Callback, State
from callbacks.store import CALLBACKS, CallbackNotFound
from callbacks.windows import next_slots, speak_time
from context.events import EventType
from core.extensions import QUEUE, REDIS
from core.validation import whole_number
from directory.store import NUMBERS
from voice import twiml
from voice.calls import CALLS
from voice.prompts import prompt
from voice.screenpop import publish_once
from voice.security import answered_once, require_twilio_signature, status_callback, webhook_failed
from voice.summary import first_name, speech_safe, spoken_subject
from voice.webhooks import FALLBACK_SPEECH, about, connect_call, load_thread, speech_for

MAX_TIMESTAMP = int(datetime.max.replace(tzinfo=UTC).timestamp())  # slots past it cannot be read back

bp = Blueprint("voice_callbacks", __name__, url_prefix=dialer.WEBHOOKS)

bp.before_request(require_twilio_signature)
bp.register_error_handler(Exception, webhook_failed)


def _load() -> tuple[Callback | None, int]:
    """The callback and attempt this call was placed for; None when the call belongs to an older claim."""
    attempt, claim = whole_number(request.args.get("attempt", "0")) or 0, request.args.get("claim", "")
    try:
        callback = CALLBACKS.get().get(request.args.get("cb", ""))
    except CallbackNotFound:
        return None, 0
    if not 1 <= attempt <= len(callback.attempts) or claim_token(callback.attempts[attempt - 1]) != claim:
        return None, attempt  # a call from a claim that was reconciled away: it decides nothing
    return callback, attempt


def _url(endpoint: str, callback: Callback, attempt: int, **extra: str) -> str:
    return dialer.webhook_url(endpoint, callback.id, attempt, request.args.get("claim", ""), **extra)


def _goodbye(key: str, callback: Callback | None) -> str:
    number = NUMBERS.get().get(callback.number) if callback else None
    if number is None:
        return twiml.say_and_hang_up([prompt("en-US", key)], FALLBACK_SPEECH)
    speech = speech_for(number, load_thread(callback.thread_id))
    return twiml.say_and_hang_up([prompt(speech.language, key, brand=number.brand)], speech)


@bp.post("/answer")
@answered_once
def answer() -> str:
    """The callee picked up: a machine gets a short voicemail; a person hears why we call and chooses."""
    callback, attempt = _load()
    sid, answered_by = request.form.get("CallSid", ""), request.form.get("AnsweredBy") or None
    if callback is None or callback.state not in (State.dialing, State.in_call):
        return _goodbye("callback_not_needed", callback)
    number = NUMBERS.get().get(callback.number)
    thread = load_thread(callback.thread_id)
    if number is None or thread is None:
        return _goodbye("callback_not_needed", callback)
    # Kept on the attempt now: Twilio documents AnsweredBy on this request, not on the status callbacks that end it.
    # The voicemail this answer leaves is told with it.
    voicemail = is_machine(answered_by) and leaves_message(answered_by)
    CALLBACKS.get().update(
        callback.id, functools.partial(lifecycle.answered, attempt=attempt, answered_by=answered_by),
        announce=lambda picked: ([dialer.news(picked, EventType.call_voicemail_left,
                                              "We called and left you a voicemail. Reply here to pick a time.",
                                              attempt=attempt)] if voicemail else []))
    CALLS.get().open(sid, "outbound-api", callback.number, callback.phone, "callback_answered",
                  callback_id=callback.id, attempt=attempt, answered_by=answered_by or "")
    CALLS.get().link(sid, thread.id)
    speech = speech_for(number, thread)
    name = first_name(thread.customer.name)
    greeting_name = f" {name}" if name else ""
    if is_machine(answered_by):
        if not leaves_message(answered_by):
            return twiml.say_and_hang_up([], speech)  # a greeting still playing, or a fax: nobody would hear it
        # Only the brand, the subject and a first name: a voicemail can be heard by anyone.
        text = prompt(speech.language, "callback_voicemail", name=greeting_name, brand=number.brand,
                      subject=speech_safe(thread.subject, 100).rstrip(".?! "))
        return twiml.say_and_hang_up([text], speech)
    text = prompt(speech.language, "callback_greeting", name=greeting_name, brand=number.brand,
                  subject=spoken_subject(thread))
    return twiml.ask([text], _url("choice", callback, attempt), _url("no-choice", callback, attempt), speech)


@bp.post("/no-choice")
@answered_once
def no_choice() -> str:
    callback, _ = _load()
    return _goodbye("callback_try_later", callback)


@bp.post("/choice")
@answered_once
def choice() -> str:
    """1: an agent now. 2: three later times. 3: no longer needed."""
    callback, attempt = _load()
    sid, digits = request.form.get("CallSid", ""), request.form.get("Digits", "")
    if callback is None or callback.state != State.in_call:
        return _goodbye("callback_not_needed", callback)
    CALLS.get().step(sid, "pressed", value=digits)
    number = NUMBERS.get().get(callback.number)
    thread = load_thread(callback.thread_id)
    if number is None or thread is None:
        return _goodbye("callback_not_needed", callback)
    if digits == "1":
        done = CALLBACKS.get().update(callback.id, lifecycle.connected, announce=lambda connected: [dialer.news(
            connected, EventType.call_connected, "You're on the phone with us now.", attempt=attempt, call_sid=sid)])
        if done.state != State.completed:  # unchanged when canceled meanwhile
            return _goodbye("callback_not_needed", callback)
        return connect_call(number, sid, thread)
    if digits == "2":
        slots = next_slots(datetime.now(UTC), number, callback.callee_zone)
        speech = speech_for(number, thread)
        now = datetime.now(UTC)
        texts = [prompt(speech.language, "slot_offer")]
        texts += [prompt(speech.language, "slot_option", time=speak_time(slot, callback.callee_zone, now),
                         digit=str(i)) for i, slot in enumerate(slots, start=1)]
        stamps = ",".join(str(int(slot.timestamp())) for slot in slots)
        return twiml.ask(texts, _url("slot", callback, attempt, slots=stamps), _url("no-choice", callback, attempt),
                         speech)
    if digits == "3":
        dialer.cancel(CALLBACKS.get(), callback.id, "no longer needed")
        return _goodbye("callback_glad", callback)
    return twiml.ask([], _url("choice", callback, attempt), _url("no-choice", callback, attempt), FALLBACK_SPEECH)


@bp.post("/slot")
@answered_once
def slot() -> str:
    """The customer picked a later time: the callback waits for it."""
    callback, attempt = _load()
    digits = request.form.get("Digits", "")
    offered = [stamp for s in request.args.get("slots", "").split(",")
               if (stamp := whole_number(s)) is not None and stamp < MAX_TIMESTAMP]
    choice = whole_number(digits) or 0
    if callback is None or not 1 <= choice <= len(offered):
        return _goodbye("callback_try_later", callback)
    when = datetime.fromtimestamp(offered[choice - 1], tz=UTC)
    now = datetime.now(UTC)
    moved = CALLBACKS.get().update(
        callback.id, functools.partial(lifecycle.choose_later, attempt=attempt, when=when, now=now),
        announce=lambda later: [dialer.news(later, EventType.callback_rescheduled,
                                            f"We'll call you {later.customer_local_time}.")])
    if moved.state != State.scheduled:
        return _goodbye("callback_try_later", callback)
    dialer.schedule(QUEUE.get(), moved, now)
    number = NUMBERS.get().get(moved.number)
    speech = speech_for(number, load_thread(moved.thread_id)) if number else FALLBACK_SPEECH
    return twiml.say_and_hang_up([prompt(speech.language, "slot_confirmed", time=moved.customer_local_time)], speech)


@bp.post("/agent")
@answered_once
def agent() -> str:
    """Agent first: the agent answered; their screen pops and they hear who and why, 1 to call the customer."""
    callback, attempt = _load()
    form = request.form
    if callback is None or callback.state != State.dialing:
        return _goodbye("callback_not_needed", callback)
    number = NUMBERS.get().get(callback.number)
    thread = load_thread(callback.thread_id)
    if number is None or thread is None:
        return _goodbye("callback_not_needed", callback)
    agent_id, sid = request.args.get("agent", ""), form.get("CallSid", "")
    publish_once(REDIS.get(), agent_id, sid, sid, thread.id)  # unless it popped while the agent's leg rang
    CALLS.get().open(sid, "outbound-api", callback.number, callback.phone, "agent_answered", agent_id=agent_id,
                  callback_id=callback.id, attempt=attempt)
    CALLS.get().link(sid, thread.id)
    speech = twiml.Speech(number.language, number.speech_voice(number.language))  # the agent's language
    caller = first_name(thread.customer.name) or prompt(speech.language, "a_customer")
    text = prompt(speech.language, "agent_callback", brand=number.brand, caller=caller, summary=about(thread, 120))
    return twiml.whisper(text, _url("agent-go", callback, attempt, agent=agent_id), speech)


@bp.post("/agent-go")
@answered_once
def agent_go() -> str:
    """The agent pressed 1: dial the customer, who hears the context before being bridged."""
    callback, attempt = _load()
    if callback is None or callback.state != State.dialing or request.form.get("Digits") != "1":
        return twiml.say_and_hang_up([], FALLBACK_SPEECH)
    if CALLBACKS.get().update(callback.id, lifecycle.dialling_customer).state != State.in_call:
        return twiml.say_and_hang_up([], FALLBACK_SPEECH)
    number = NUMBERS.get().get(callback.number)
    speech = twiml.Speech(number.language, number.speech_voice(number.language)) if number else FALLBACK_SPEECH
    CALLS.get().step(request.form.get("CallSid", ""), "agent_accepted", agent_id=request.args.get("agent"))
    caller_id = (number.caller_id or number.number) if number else None
    return twiml.connect([], twiml.Target(phone=callback.phone), _url("greet", callback, attempt),
                         _url("customer-done", callback, attempt), caller_id, speech, timeout=30)


@bp.post("/greet")
@answered_once
def greet() -> str:
    """Agent first: what the customer hears on answering, before the agent is on the line."""
    callback, _ = _load()
    number = NUMBERS.get().get(callback.number) if callback else None
    thread = load_thread(callback.thread_id) if callback else None
    if number is None or thread is None:
        return twiml.bridge()
    speech = speech_for(number, thread)
    name = first_name(thread.customer.name)
    text = prompt(speech.language, "callback_connecting", name=f" {name}" if name else "", brand=number.brand,
                  summary=about(thread))
    return twiml.say_then_bridge(text, speech)


@bp.post("/customer-done")
@answered_once
def customer_done() -> str:
    """Agent first: the customer's leg ended: a conversation completes the callback, anything else is retried."""
    callback, attempt = _load()
    form = request.form
    status = form.get("DialCallStatus", "")
    if callback is not None:
        # DialBridged is not sent in every flow: missing, the status alone decides.
        bridged = {"true": True, "false": False}.get(form.get("DialBridged", ""))
        outcome = classify(CallFacts(status, leg="customer", bridged=bridged), callback.mode, State.in_call)
        dialer.finish_attempt(callback.id, attempt, outcome, datetime.now(UTC),
                              call={"duration": form.get("DialCallDuration"), "call_sid": form.get("DialCallSid")})
    return _goodbye("goodbye" if status == CallStatus.completed else "customer_unreached", callback)


def _pop_while_ringing(callback: Callback, attempt: int, sid: str) -> None:
    """Agent first: the agent's phone or browser rings, so the thread pops now and the agent reads before answering."""
    placed = callback.attempts[attempt - 1] if 0 < attempt <= len(callback.attempts) else None
    if placed is not None and placed.agent_id and callback.state == State.dialing:
        publish_once(REDIS.get(), placed.agent_id, sid, sid, callback.thread_id)


@bp.post("/status")
@status_callback
def status() -> Response:
    """The call's progress; its end closes the attempt with its outcome (retry or not)."""
    form = request.form
    sid, call_status = form.get("CallSid", ""), form.get("CallStatus", "")
    sequence = form.get("SequenceNumber", "")
    callback, attempt = _load()
    CALLS.get().open(sid, "outbound-api", form.get("From", ""), form.get("To", ""))
    applied = CALLS.get().apply_status(sid, sequence, call_status, form.get("CallDuration"))
    if call_status == "ringing" and request.args.get("leg") == "agent" and callback is not None:
        _pop_while_ringing(callback, attempt, sid)
    if applied and callback is not None and call_status in FINAL_STATUSES:
        current = CALLBACKS.get().get(callback.id)
        placed = current.attempts[attempt - 1]
        facts = CallFacts(call_status, answered_by=form.get("AnsweredBy") or placed.answered_by,
                          sip_response_code=form.get("SipResponseCode"))
        outcome = classify(facts, current.mode, current.state)
        if outcome:
            record = CALLS.get().get(sid) if outcome == Outcome.completed else None
            dialer.finish_attempt(callback.id, attempt, outcome, datetime.now(UTC), call={
                "duration": form.get("CallDuration"), "call_sid": sid, "agent_id": record.agent_id if record else None,
                "recording_url": record.recording_url if record else None})
    return Response(status=204)
