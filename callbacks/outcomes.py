"""What a callback attempt's call came to, decided from Twilio's facts alone: one rule for webhooks and sweeper."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from callbacks.schemas import Mode, State


class CallStatus(StrEnum):
    """Twilio's call statuses (the Calls resource and status callbacks)."""

    queued = "queued"
    initiated = "initiated"
    ringing = "ringing"
    in_progress = "in-progress"
    completed = "completed"
    busy = "busy"
    failed = "failed"
    no_answer = "no-answer"
    canceled = "canceled"


FINAL_STATUSES = frozenset({CallStatus.completed, CallStatus.busy, CallStatus.failed, CallStatus.no_answer,
                            CallStatus.canceled})


class AnsweredBy(StrEnum):
    """What Twilio's answering-machine detection says picked up."""

    human = "human"
    unknown = "unknown"  # AMD could not tell: treated as a person, who may still press a key
    machine_start = "machine_start"  # a machine, its greeting still playing
    machine_end_beep = "machine_end_beep"
    machine_end_silence = "machine_end_silence"
    machine_end_other = "machine_end_other"
    fax = "fax"


MACHINES = frozenset({AnsweredBy.machine_start, AnsweredBy.machine_end_beep, AnsweredBy.machine_end_silence,
                      AnsweredBy.machine_end_other, AnsweredBy.fax})
# The greeting is over and the box records: a short message can be left. Not at machine_start (we would talk
# over the greeting) nor to a fax.
MESSAGE_ENDS = frozenset({AnsweredBy.machine_end_beep, AnsweredBy.machine_end_silence, AnsweredBy.machine_end_other})

# SIP answers that mean the number does not exist: calling it again won't help.
UNREACHABLE_SIP_CODES = frozenset({"404", "410", "484", "604"})


class Outcome(StrEnum):
    """How an attempt ended, as stored on it and sent to the platform."""

    completed = "completed"  # the customer talked with us (or chose in the IVR)
    no_choice = "no-choice"  # a person answered but chose nothing
    machine = "machine"  # a voicemail box or a fax answered
    busy = "busy"
    no_answer = "no-answer"
    failed = "failed"
    canceled = "canceled"
    invalid = "invalid"  # the number can't be called at all
    agent_declined = "agent-declined"  # agent first: the agent answered and did not take it
    agent_unavailable = "agent-unavailable"  # agent first: the agent's phone did not answer
    no_agent = "no-agent"
    lost = "lost"
    rescheduled = "rescheduled"  # the customer picked a later time


RETRIED = frozenset({Outcome.busy, Outcome.no_answer, Outcome.failed, Outcome.canceled, Outcome.machine,
                     Outcome.no_choice, Outcome.lost, Outcome.no_agent, Outcome.agent_unavailable,
                     Outcome.agent_declined})


def is_machine(answered_by: str | None) -> bool:
    """Whether AMD said a machine or a fax answered."""
    return answered_by in MACHINES


def leaves_message(answered_by: str | None) -> bool:
    """Whether a short voicemail can be left: a machine whose greeting has ended."""
    return answered_by in MESSAGE_ENDS


@dataclass(frozen=True)
class CallFacts:
    """What Twilio told us about the call an attempt placed, once it ended.

    `leg` is "placed" for the call Threadline placed (the customer, or the agent when agent first) and "customer"
    for the customer's leg an agent-first call dials (known from its Dial action, or the child call).
    """

    status: str
    leg: str = "placed"
    answered_by: str | None = None
    sip_response_code: str | None = None
    bridged: bool | None = None  # DialBridged, when Twilio sent it


def classify(facts: CallFacts, mode: Mode, state: State) -> Outcome | None:
    """The attempt's outcome from the ended call's facts and where the callback stood; None: another leg decides.

    `state` is the callback's state when the call ended: dialing (nobody chose anything in the IVR yet) or
    in_call (a person answered the greeting, or, agent first, the agent pressed 1 and the customer is dialled).
    """
    status = facts.status
    if facts.leg == "customer":  # agent first: the customer's leg ends the attempt
        if status == CallStatus.completed:
            # Answered but never bridged: the customer hung up before reaching the agent.
            return Outcome.no_choice if facts.bridged is False else Outcome.completed
        return Outcome(status) if status in FINAL_STATUSES else Outcome.failed
    if mode == Mode.agent_first:
        if state == State.in_call:
            return None  # the agent took it: the customer's leg decides
        return Outcome.agent_declined if status == CallStatus.completed else Outcome.agent_unavailable
    if is_machine(facts.answered_by):
        return Outcome.machine
    if status == CallStatus.completed:
        if state == State.in_call:
            return Outcome.no_choice
        # Answered, yet the greeting never took the call in hand (its webhook failed): the customer heard nothing.
        return Outcome.lost if state == State.dialing else Outcome.completed
    if status == CallStatus.failed and facts.sip_response_code in UNREACHABLE_SIP_CODES:
        return Outcome.invalid
    return Outcome(status) if status in FINAL_STATUSES else Outcome.failed
