"""Twilio's webhooks for inbound calls: match the caller to a thread, then connect an agent who sees it."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import Blueprint, Response, request

from callbacks import dialer
from callbacks.outcomes import CallStatus
from context.callcodes import CALL_CODES
from context.schemas import Attachment, Author, Message, Thread, of_brand
from context.store import THREADS, ThreadNotFound, ThreadStore
from core.extensions import REDIS
from core.logs import mask_phone
from core.metrics import INBOUND_CALLS
from core.urls import absolute_url
from core.validation import whole_number
from directory.models import Number, voice_settings
from directory.routing import choose_agent
from directory.store import AGENTS, NUMBERS, AgentStore, NumberStore
from reports.counters import REPORTS, Count
from voice import twiml
from voice.calls import CALLS, CallStore
from voice.inbound import MAX_CHOICES, PROMPT_MESSAGES, Brief, Incoming, claim_incoming, incoming_call
from voice.prompts import means_yes, prompt
from voice.screenpop import publish_once
from voice.security import answered_once, require_twilio_signature, status_callback, webhook_failed
from voice.summary import first_name, last_words, speech_safe, spoken_subject, thread_summary

log = logging.getLogger(__name__)

bp = Blueprint("voice", __name__, url_prefix="/voice")
bp.before_request(require_twilio_signature)

FALLBACK_SPEECH = twiml.FALLBACK_SPEECH


def url(endpoint: str, **params: str | None) -> str:
    """The absolute URL of one of these webhooks, with the given query (empty values left out)."""
    query = urlencode({k: v for k, v in params.items() if v})
    return absolute_url(f"/voice/{endpoint}" + (f"?{query}" if query else ""))


def _stores() -> tuple[NumberStore, AgentStore, ThreadStore, CallStore]:
    return NUMBERS.get(), AGENTS.get(), THREADS.get(), CALLS.get()


def load_thread(thread_id: str | None) -> Thread | None:
    """The thread as the IVR needs it (its latest messages), or None."""
    if not thread_id:
        return None
    try:
        return _stores()[2].get(thread_id, newest=PROMPT_MESSAGES)
    except ThreadNotFound:
        return None


def speech_for(number: Number, thread: Thread | Brief | None) -> twiml.Speech:
    settings = voice_settings(number, thread.customer.locale if thread else None)
    return twiml.Speech(settings["language"], settings["voice"])


def say(number: Number, thread: Thread | Brief | None, *prompts: str, **values: str) -> tuple[list[str], twiml.Speech]:
    speech = speech_for(number, thread)
    return [prompt(speech.language, key, brand=number.brand, **values) for key in prompts], speech


def about(thread: Thread, limit: int = 200) -> str:
    """The thread's summary to set inside a sentence: without its own closing punctuation."""
    return thread_summary(thread, limit).rstrip(".?! ")


def _greeting_name(thread: Thread | Brief) -> str:
    name = first_name(thread.customer.name)
    return f" {name}" if name else ""


def dialled_number() -> Number | None:
    """The configured number this call is about (the dialled number, or the one named in the query)."""
    return _stores()[0].get(request.args.get("number") or request.form.get("To", ""))


# --- the caller's side ---------------------------------------------------------------------------------------


@bp.post("/incoming")
@answered_once(claim=claim_incoming)
def incoming() -> str:
    """A call in's first webhook."""
    return answer_incoming(incoming_call(), request.form)


def answer_incoming(call: Incoming, form: Mapping[str, str]) -> str:
    """A call in, claimed: greet by the caller ID's open threads of the number's brand when it is trusted, else ask a
    code. In an app context, with or without a request (voice/fast_lane.py)."""
    number = call.number
    if number is None:
        log.warning("call %s to %s, a number Threadline does not serve", form.get("CallSid", ""),
                    mask_phone(form.get("To", "")))
        return twiml.say_and_hang_up([prompt("en-US", "unknown_number")], FALLBACK_SPEECH)
    if not call.trusted:
        if not call.is_open:
            return _closed(number, None, notice=True, repeat=call.repeat)
        return _ask_code(number, 1, "welcome", notice=True)
    found = call.threads if call.threads is not None else _open_threads(number, call.is_open, form)
    first = found[0] if found else None
    if not call.is_open:
        # Caller ID alone links nothing: the voicemail may go into the caller's one thread, the call stays unlinked.
        return _closed(number, first if len(found) == 1 else None, notice=True, repeat=call.repeat)
    if len(found) == 1:
        texts, speech = say(number, first, "greet_one", name=_greeting_name(first), subject=spoken_subject(first))
        if last := last_words(first):
            texts.append(prompt(speech.language, "last_wrote", message=last))
        return twiml.ask(texts, url("confirm", thread=first.id), url("code"), speech, with_speech=True,
                         before=recording_notice(number, speech))
    if found:
        speech = speech_for(number, first)
        texts = [prompt(speech.language, "choose", name=_greeting_name(first))]
        texts += [prompt(speech.language, "choose_option", summary=speech_safe(t.subject, 80), digit=str(i))
                  for i, t in enumerate(found, start=1)]
        texts.append(prompt(speech.language, "choose_other"))
        return twiml.ask(texts, url("choose", threads=",".join(t.id for t in found)), url("code"), speech,
                         before=recording_notice(number, speech))
    return _ask_code(number, attempt=1, notice=True)


def _open_threads(number: Number, is_open: bool, form: Mapping[str, str]) -> Sequence[Thread | Brief]:
    """The caller's threads read through the stores, when a brand was not ASCII; then the call's record opened."""
    sid, dialled, caller = form.get("CallSid", ""), form.get("To", ""), form.get("From", "")
    verstat = form.get("StirVerstat", "").strip() or None
    ids = THREADS.get().open_thread_ids_of_brand(caller, number.brand, MAX_CHOICES)
    found = [t for t in (load_thread(i) for i in ids) if t]
    step, detail = ("matched_caller_id", {"threads": [t.id for t in found]}) if found else ("no_caller_id_match", {})
    verification = {"stir_verstat": verstat} if verstat else {}
    CALLS.get().open(sid, "inbound", dialled, caller, step if is_open else "closed", **(detail if is_open else {}),
                     **verification)
    REPORTS.get().count(number, {Count.calls_in: 1}, once=(sid, Count.calls_in))
    return found


def recording_notice(number: Number, speech: twiml.Speech) -> tuple[str, ...]:
    """What a number that records its calls says first, in full, in the language the caller is addressed in."""
    return (prompt(speech.language, "recording_notice", brand=number.brand),) if number.record_calls else ()


def _closed(number: Number, thread: Thread | Brief | None, *, notice: bool = False, repeat: bool = False) -> str:
    """The number is closed: say so and offer a voicemail, into thread when one is given (a repeat of a request
    answered so is not counted again)."""
    if not repeat:
        INBOUND_CALLS.labels("closed").inc()
    texts, speech = say(number, thread, "closed", "closed_voicemail")
    texts = [*(recording_notice(number, speech) if notice else ()), *texts]
    return twiml.voicemail(texts, url("voicemail", thread=thread.id if thread else None), speech,
                           prompt(speech.language, "no_message"))


def _ask_code(number: Number, attempt: int, *before: str, notice: bool = False) -> str:
    texts, speech = say(number, None, *before, "ask_code")
    return twiml.ask(texts, url("code", attempt=str(attempt)), url("general"), speech, digits=6, timeout=8,
                     before=recording_notice(number, speech) if notice else ())


@bp.post("/confirm")
@answered_once
def confirm() -> str:
    """Yes (1, or said): connect on that thread. Anything else: ask for a call code."""
    sid, digits, said = request.form.get("CallSid", ""), request.form.get("Digits"), request.form.get("SpeechResult")
    number, thread = dialled_number(), load_thread(request.args.get("thread"))
    calls = _stores()[3]
    if number is None:
        return twiml.say_and_hang_up([prompt("en-US", "error")], FALLBACK_SPEECH)
    calls.step(sid, "pressed" if digits else "said", value=digits or said or "")
    language = speech_for(number, thread).language
    if thread and (digits == "1" or (not digits and said and means_yes(language, said))):
        _matched(number, sid, "matched")
        return connect_call(number, sid, thread)
    return _ask_code(number, attempt=1)


@bp.post("/choose")
@answered_once
def choose() -> str:
    """The caller picked one of their threads by key (0 or anything else: ask for a call code)."""
    sid, digits = request.form.get("CallSid", ""), request.form.get("Digits", "")
    number, calls = dialled_number(), _stores()[3]
    if number is None:
        return twiml.say_and_hang_up([prompt("en-US", "error")], FALLBACK_SPEECH)
    calls.step(sid, "pressed", value=digits)
    offered = [t for t in request.args.get("threads", "").split(",") if t][:MAX_CHOICES]
    choice = whole_number(digits) or 0
    if 1 <= choice <= len(offered) and (thread := load_thread(offered[choice - 1])):
        _matched(number, sid, "matched")
        return connect_call(number, sid, thread)
    return _ask_code(number, attempt=1)


@bp.post("/code")
@answered_once
def code() -> str:
    """Ask for the six-digit call code, or check the one entered: a valid code connects on its thread."""
    sid, digits = request.form.get("CallSid", ""), request.form.get("Digits")
    number, calls = dialled_number(), _stores()[3]
    if number is None:
        return twiml.say_and_hang_up([prompt("en-US", "error")], FALLBACK_SPEECH)
    attempt = whole_number(request.args.get("attempt", "1")) or 1
    if digits is None:
        return _ask_code(number, attempt)
    thread_id = CALL_CODES.get().redeem(digits)
    thread = load_thread(thread_id)
    if thread and not of_brand(thread.brand, number.brand):
        thread = None  # another brand's conversation: its agents here must not gain it through the code
    calls.step(sid, "entered_code", valid=thread is not None)
    if thread:
        _matched(number, sid, "code")
        return connect_call(number, sid, thread)
    if attempt < 2:
        return _ask_code(number, attempt + 1, "bad_code")
    INBOUND_CALLS.labels("general_line").inc()
    return connect_call(number, sid, None)


def _matched(number: Number, sid: str, how: str) -> None:
    """A call in found its conversation (how: by caller ID or by call code): in the metrics and the reports."""
    INBOUND_CALLS.labels(how).inc()
    REPORTS.get().count(number, {Count.matched: 1}, once=(sid, Count.matched))


@bp.post("/general")
@answered_once
def general() -> str:
    """No thread named: the first available agent of the number."""
    number = dialled_number()
    if number is None:
        return twiml.say_and_hang_up([prompt("en-US", "error")], FALLBACK_SPEECH)
    INBOUND_CALLS.labels("general_line").inc()
    return connect_call(number, request.form.get("CallSid", ""), None)


def connect_call(number: Number, sid: str, thread: Thread | None) -> str:
    """Ring the chosen agent with a whisper; with nobody available, offer a voicemail into the thread."""
    _, agents, _, calls = _stores()
    if thread:
        calls.link(sid, thread.id)
        dialer.cancel_for_thread(thread.id, "the customer called in")
    agent = choose_agent(number, thread, agents)
    thread_id = thread.id if thread else None
    if agent is None:
        calls.step(sid, "no_agent_available")
        texts, speech = say(number, thread, "no_agent")
        return twiml.voicemail(texts, url("voicemail", thread=thread_id), speech,
                               prompt(speech.language, "no_message"))
    calls.step(sid, "dialling_agent", agent_id=agent.id)
    texts, speech = say(number, thread, "connecting" if thread else "general")
    params = {"thread": thread_id, "agent": agent.id, "number": number.number}
    return twiml.connect(texts, twiml.Target(agent.phone, agent.client_identity), url("whisper", **params),
                         url("dial-done", **params), None, speech, ringing=url("agent-ringing", **params),
                         recording_callback=url("recording") if number.record_calls else None)


@bp.post("/dial-done")
@answered_once
def dial_done() -> str:
    """The agent's leg ended: after a conversation, goodbye; unanswered or declined, a voicemail."""
    sid, status = request.form.get("CallSid", ""), request.form.get("DialCallStatus", "")
    number, calls = dialled_number(), _stores()[3]
    thread = load_thread(request.args.get("thread"))
    if number is None:
        return twiml.say_and_hang_up([prompt("en-US", "error")], FALLBACK_SPEECH)
    calls.step(sid, "dial_ended", status=status, agent_id=request.args.get("agent"),
               duration=request.form.get("DialCallDuration"), bridged=request.form.get("DialBridged"))
    if status == CallStatus.completed and _bridged(sid, request.form.get("DialBridged")):
        if number.survey:  # the customer is still on the line: how did it go? (voice/survey.py)
            texts, speech = say(number, thread, "survey_ask")
            survey = url("survey", thread=thread.id if thread else None, number=number.number)
            return twiml.ask(texts, survey, survey, speech)
        texts, speech = say(number, thread, "goodbye")
        return twiml.say_and_hang_up(texts, speech)
    texts, speech = say(number, thread, "no_agent")
    return twiml.voicemail(texts, url("voicemail", thread=thread.id if thread else None), speech,
                           prompt(speech.language, "no_message"))


def _bridged(sid: str, dial_bridged: str | None) -> bool:
    """Whether the caller talked with the agent: DialBridged when Twilio sends it, else the agent's acceptance."""
    if dial_bridged in ("true", "false"):
        return dial_bridged == "true"
    record = _stores()[3].get(sid)
    return record is not None and any(step.kind == "agent_accepted" for step in record.steps)


@bp.post("/voicemail")
@answered_once
def voicemail() -> str:
    """A recorded message: kept on the call and, when the thread is known, added to it."""
    form = request.form
    sid, recording, seconds = form.get("CallSid", ""), form.get("RecordingUrl", ""), form.get("RecordingDuration")
    _, _, threads, calls = _stores()
    number, thread = dialled_number(), load_thread(request.args.get("thread"))
    calls.set(sid, recording_url=recording)
    calls.step(sid, "voicemail", recording_url=recording, duration=seconds)
    if recording:
        INBOUND_CALLS.labels("voicemail").inc()
        if number:
            REPORTS.get().count(number, {Count.voicemails: 1}, once=(sid, Count.voicemails))
    if thread and recording:
        record = calls.get(sid)
        # A call linked to the thread was confirmed by the caller; otherwise only the caller ID pointed here.
        how = "" if record and record.thread_id == thread.id else " from the customer's number, not confirmed"
        message = Message(id=f"voicemail-{sid}", author=Author.bot, name="Voicemail",
                          text=f"Voicemail left on a phone call{how} ({seconds or '?'} s).", sent_at=datetime.now(UTC),
                          attachments=[Attachment(name="voicemail.wav", url=recording, content_type="audio/wav")])
        threads.append_message(thread.id, message)
    if number is None:
        return twiml.say_and_hang_up([prompt("en-US", "voicemail_thanks")], FALLBACK_SPEECH)
    texts, speech = say(number, thread, "voicemail_thanks")
    return twiml.say_and_hang_up(texts, speech)


# --- the agent's side ----------------------------------------------------------------------------------------


@bp.post("/agent-ringing")
@status_callback
def agent_ringing() -> Response:
    """The agent's phone or browser rings: pop the thread on their screen now, so they read before answering."""
    form = request.form
    if form.get("CallStatus") == "ringing" and form.get("CallSid") and request.args.get("agent"):
        publish_once(REDIS.get(), request.args["agent"], form.get("ParentCallSid", ""), form["CallSid"],
                     request.args.get("thread"))
    return Response(status=204)


@bp.post("/whisper")
@answered_once
def whisper() -> str:
    """The agent answered: tell them in one sentence who and why (their screen popped as it rang, or pops now if
    Twilio's ringing callback has not arrived)."""
    form = request.form
    parent, agent_leg = form.get("ParentCallSid", ""), form.get("CallSid", "")
    agent_id, number = request.args.get("agent", ""), dialled_number()
    thread = load_thread(request.args.get("thread"))
    calls = _stores()[3]
    publish_once(REDIS.get(), agent_id, parent, agent_leg, thread.id if thread else None)
    calls.step(parent, "agent_answered", agent_id=agent_id, agent_call_sid=agent_leg)
    if number is None:
        return twiml.say_and_hang_up([], FALLBACK_SPEECH)
    speech = twiml.Speech(number.language, number.speech_voice(number.language))  # the agent's language
    if thread:
        caller = first_name(thread.customer.name) or prompt(speech.language, "a_customer")
        text = prompt(speech.language, "whisper", brand=number.brand, caller=caller,
                      summary=about(thread, 120))
    else:
        text = prompt(speech.language, "whisper_general", brand=number.brand)
    params = {"thread": thread.id if thread else None, "agent": agent_id, "number": number.number}
    return twiml.whisper(text, url("whisper-accept", **params), speech)


@bp.post("/whisper-accept")
@answered_once
def whisper_accept() -> str:
    """1 takes the call (bridge); anything else declines it (the caller's Dial then ends unanswered)."""
    parent = request.form.get("ParentCallSid", "")
    agent_id, accepted = request.args.get("agent", ""), request.form.get("Digits") == "1"
    calls = _stores()[3]
    calls.step(parent, "agent_accepted" if accepted else "agent_declined", agent_id=agent_id)
    if accepted:
        direction = calls.accept(parent, agent_id)
        # A call in (a callback's call is whispered the same way: its own figures count it).
        # The number as the query names it: the counters know its zone, no read of its configuration here.
        if (number := request.args.get("number")) and direction == "inbound":
            REPORTS.get().count(number, {Count.answered: 1}, once=(parent, Count.answered))
        return twiml.bridge()
    return twiml.say_and_hang_up([], FALLBACK_SPEECH)


# --- status ----------------------------------------------------------------------------------------------------


@bp.post("/status")
@status_callback
def status() -> Response:
    """Call status callbacks: applied in SequenceNumber order, so a late or repeated one changes nothing."""
    form = request.form
    sid, call_status = form.get("CallSid", ""), form.get("CallStatus", "")
    sequence = form.get("SequenceNumber", "")
    calls = _stores()[3]
    inbound = form.get("Direction", "inbound") == "inbound"
    ours, theirs = (form.get("To", ""), form.get("From", "")) if inbound else (form.get("From", ""), form.get("To", ""))
    calls.open(sid, form.get("Direction", "inbound"), ours, theirs)
    calls.apply_status(sid, sequence, call_status, form.get("CallDuration"), with_step=bool(call_status))
    return Response(status=204)


bp.register_error_handler(Exception, webhook_failed)
