"""The one rule that turns Twilio's facts about an ended call into a callback attempt's outcome."""

from __future__ import annotations

import itertools

import pytest

from callbacks.outcomes import (
    FINAL_STATUSES,
    RETRIED,
    AnsweredBy,
    CallFacts,
    CallStatus,
    Outcome,
    classify,
    is_machine,
    leaves_message,
)
from callbacks.schemas import Mode, State

C, A = Mode.customer_first, Mode.agent_first
DIALING, IN_CALL, DONE = State.dialing, State.in_call, State.completed

# (facts, mode, state when the call ended) -> outcome; every row a case Twilio can send.
TABLE = [
    # Customer first, the call Threadline placed.
    (CallFacts("completed", answered_by="human"), C, IN_CALL, Outcome.no_choice),  # greeted, chose nothing
    (CallFacts("completed", answered_by="human"), C, DONE, Outcome.completed),  # pressed 1
    (CallFacts("completed", answered_by="unknown"), C, IN_CALL, Outcome.no_choice),
    (CallFacts("completed"), C, DONE, Outcome.completed),  # no AMD verdict known at all
    (CallFacts("completed"), C, DIALING, Outcome.lost),  # answered, but the greeting never ran
    (CallFacts("completed", answered_by="machine_start"), C, DIALING, Outcome.machine),
    (CallFacts("completed", answered_by="machine_end_beep"), C, DIALING, Outcome.machine),
    (CallFacts("completed", answered_by="machine_end_silence"), C, DIALING, Outcome.machine),
    (CallFacts("completed", answered_by="machine_end_other"), C, DIALING, Outcome.machine),
    (CallFacts("completed", answered_by="fax"), C, DIALING, Outcome.machine),
    (CallFacts("busy", sip_response_code="486"), C, DIALING, Outcome.busy),
    (CallFacts("no-answer", sip_response_code="487"), C, DIALING, Outcome.no_answer),
    (CallFacts("canceled"), C, DIALING, Outcome.canceled),
    (CallFacts("failed", sip_response_code="503"), C, DIALING, Outcome.failed),
    (CallFacts("failed"), C, DIALING, Outcome.failed),
    (CallFacts("failed", sip_response_code="404"), C, DIALING, Outcome.invalid),
    (CallFacts("failed", sip_response_code="410"), C, DIALING, Outcome.invalid),
    (CallFacts("failed", sip_response_code="484"), C, DIALING, Outcome.invalid),
    (CallFacts("failed", sip_response_code="604"), C, DIALING, Outcome.invalid),
    (CallFacts("busy", sip_response_code="404"), C, DIALING, Outcome.busy),  # only a failure reads the SIP code
    # Agent first: the agent's leg, placed by Threadline.
    (CallFacts("completed"), A, DIALING, Outcome.agent_declined),  # answered, never pressed 1
    (CallFacts("no-answer"), A, DIALING, Outcome.agent_unavailable),
    (CallFacts("busy"), A, DIALING, Outcome.agent_unavailable),
    (CallFacts("failed", sip_response_code="404"), A, DIALING, Outcome.agent_unavailable),
    (CallFacts("completed", answered_by="machine_end_beep"), A, DIALING, Outcome.agent_declined),
    (CallFacts("completed"), A, IN_CALL, None),  # the agent took it: the customer's leg decides
    # Agent first: the customer's leg, from its Dial action (DialCallStatus, DialBridged) or the child call.
    (CallFacts("completed", leg="customer", bridged=True), A, IN_CALL, Outcome.completed),
    (CallFacts("completed", leg="customer"), A, IN_CALL, Outcome.completed),  # DialBridged not sent
    (CallFacts("completed", leg="customer", bridged=False), A, IN_CALL, Outcome.no_choice),
    (CallFacts("busy", leg="customer"), A, IN_CALL, Outcome.busy),
    (CallFacts("no-answer", leg="customer"), A, IN_CALL, Outcome.no_answer),
    (CallFacts("failed", leg="customer"), A, IN_CALL, Outcome.failed),
    (CallFacts("canceled", leg="customer"), A, IN_CALL, Outcome.canceled),
    (CallFacts("answered", leg="customer"), A, IN_CALL, Outcome.failed),  # DialCallStatus answered: not an end
    (CallFacts("", leg="customer"), A, IN_CALL, Outcome.failed),
]


@pytest.mark.parametrize(("facts", "mode", "state", "expected"), TABLE)
def test_each_case_has_one_outcome(facts, mode, state, expected):
    assert classify(facts, mode, state) == expected


STATUSES = [*CallStatus, "answered", "", "bogus"]
ANSWERS = [None, *AnsweredBy, "machine"]
SIP = [None, "200", "404", "486", "487", "503", "604", "abc"]
STATES = [State.dialing, State.in_call, State.completed, State.scheduled, State.canceled]
EVERY = list(itertools.product(STATUSES, ANSWERS, SIP, ["placed", "customer"], list(Mode), STATES,
                               [None, True, False]))


def _facts(status, answered_by, sip, leg, bridged) -> CallFacts:
    return CallFacts(status, leg=leg, answered_by=answered_by, sip_response_code=sip, bridged=bridged)


def test_every_combination_has_an_outcome_except_an_agent_who_took_the_call():
    for status, answered_by, sip, leg, mode, state, bridged in EVERY:
        outcome = classify(_facts(status, answered_by, sip, leg, bridged), mode, state)
        undecided = leg == "placed" and mode == Mode.agent_first and state == State.in_call
        assert (outcome is None) == undecided, (status, answered_by, sip, leg, mode, state, bridged)
        assert outcome is None or isinstance(outcome, Outcome)


def test_a_machine_or_fax_on_the_customer_first_call_is_always_a_machine_and_retried():
    for status, answered_by, sip, _, _, state, bridged in EVERY:
        if answered_by in {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}:
            outcome = classify(_facts(status, answered_by, sip, "placed", bridged), Mode.customer_first, state)
            assert outcome == Outcome.machine and outcome in RETRIED


def test_only_a_call_that_ended_in_a_conversation_completes():
    for status, answered_by, sip, leg, mode, state, bridged in EVERY:
        if classify(_facts(status, answered_by, sip, leg, bridged), mode, state) != Outcome.completed:
            continue
        assert status == "completed"
        if leg == "customer":
            assert bridged is not False
        else:  # the IVR had already decided (pressed 1), and no machine answered
            assert mode == Mode.customer_first and not is_machine(answered_by)
            assert state not in (State.dialing, State.in_call)


def test_an_unfinished_or_unknown_status_never_completes_and_is_retried():
    for status, answered_by, sip, leg, mode, state, bridged in EVERY:
        if status not in FINAL_STATUSES:
            outcome = classify(_facts(status, answered_by, sip, leg, bridged), mode, state)
            assert outcome is None or outcome in RETRIED


def test_a_message_is_left_only_once_a_machines_greeting_has_ended():
    assert {a for a in AnsweredBy if leaves_message(a)} == {"machine_end_beep", "machine_end_silence",
                                                            "machine_end_other"}
    assert {a for a in AnsweredBy if is_machine(a)} == {"machine_start", "machine_end_beep", "machine_end_silence",
                                                        "machine_end_other", "fax"}
    assert not is_machine(None) and not leaves_message(None)
