"""The post-call survey a number may turn on: after the agent hangs up, the customer rates the call 1 to 5 by key and
may leave a short spoken comment; the score goes onto the call and into the thread as call.feedback."""

from __future__ import annotations

from flask import Blueprint, request

from context.events import EventType, new_event
from reports.counters import REPORTS, Count
from voice import twiml
from voice.calls import CALLS
from voice.prompts import prompt
from voice.security import answered_once, require_twilio_signature, webhook_failed
from voice.webhooks import FALLBACK_SPEECH, dialled_number, load_thread, say, url

bp = Blueprint("voice_survey", __name__, url_prefix="/voice")
bp.before_request(require_twilio_signature)
bp.register_error_handler(Exception, webhook_failed)

SCORES = ("1", "2", "3", "4", "5")
COMMENT_SECONDS = 30  # a short comment, not a second voicemail


@bp.post("/survey")
@answered_once
def rated() -> str:
    """A key from 1 to 5 is the score, kept on the call and told to the thread; anything else, or none, ends the call
    with a goodbye."""
    sid, digits, thread_id = request.form.get("CallSid", ""), request.form.get("Digits", ""), request.args.get("thread")
    number, thread = dialled_number(), load_thread(thread_id)
    if number is None:
        return twiml.say_and_hang_up([prompt("en-US", "goodbye")], FALLBACK_SPEECH)
    if digits not in SCORES:
        texts, speech = say(number, thread, "goodbye")
        return twiml.say_and_hang_up(texts, speech)
    score = int(digits)
    announce = [new_event(thread.id, EventType.call_feedback, {"score": score, "call_sid": sid},
                          f"The customer rated the call {score} out of 5.")] if thread else []
    CALLS.get().step(sid, "feedback", announce=announce, score=score)
    REPORTS.get().count(number, {Count.ratings: 1, Count.rating_sum: score}, once=(sid, Count.ratings))
    texts, speech = say(number, thread, "survey_comment")
    comment = url("survey-comment", thread=thread.id if thread else None, number=number.number)
    return twiml.voicemail(texts, comment, speech, prompt(speech.language, "survey_thanks"),
                           max_length=COMMENT_SECONDS)


@bp.post("/survey-comment")
@answered_once
def commented() -> str:
    """The comment's recording, kept on the call beside its score; then thanks."""
    sid, recording = request.form.get("CallSid", ""), request.form.get("RecordingUrl", "")
    number, thread = dialled_number(), load_thread(request.args.get("thread"))
    if recording:
        CALLS.get().step(sid, "feedback_comment", recording_url=recording,
                         seconds=request.form.get("RecordingDuration", ""))
    if number is None:
        return twiml.say_and_hang_up([prompt("en-US", "goodbye")], FALLBACK_SPEECH)
    texts, speech = say(number, thread, "survey_thanks")
    return twiml.say_and_hang_up(texts, speech)
