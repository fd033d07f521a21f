"""The desk's words, as pure functions: times in a zone, durations, calls and callbacks told as people say them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from callbacks.outcomes import Outcome
from callbacks.schemas import Attempt, Callback, Mode, State
from context.schemas import Message
from desk import briefing, words
from voice.calls import CallRecord, Step

NOW = datetime(2026, 12, 3, 20, 2, tzinfo=UTC)  # Thursday 3:02 PM in New York
NY = "America/New_York"
NAMES = {"sam": "Sam", "lee": "Lee"}
MACHINE = re.compile(r"\w_\w|\d{4}-\d{2}-\d{2}T|outbound-api|in-progress")


def call(*steps: tuple[str, dict[str, Any]], direction: str = "inbound", thread_id: str | None = "t-1",
         **fields: Any) -> CallRecord:
    """A call record with steps a second apart."""
    return CallRecord(sid="CA1", direction=direction, thread_id=thread_id, started_at=NOW, **fields,
                      steps=[Step(at=NOW + timedelta(seconds=i), kind=kind, detail=detail)
                             for i, (kind, detail) in enumerate(steps)])


def callback(state: State, **fields: Any) -> Callback:
    base = {"id": "cb-1", "thread_id": "t-1", "state": state, "mode": Mode.customer_first, "number": "+14155550100",
            "phone": "+14155550123", "callee_zone": "America/Los_Angeles", "scheduled_for": NOW + timedelta(days=1),
            "customer_local_time": "tomorrow at 12 PM", "created_at": NOW, "updated_at": NOW}
    return Callback(**{**base, **fields})


@pytest.mark.parametrize("moment, said", [
    (NOW, "Today 3:02 PM"),
    (NOW - timedelta(days=1), "Yesterday 3:02 PM"),
    (NOW + timedelta(days=1), "Tomorrow 3:02 PM"),
    (datetime(2026, 11, 30, 14, 0, tzinfo=UTC), "Mon 30 Nov 9:00 AM"),
    (datetime(2025, 12, 2, 0, 5, tzinfo=UTC), "Mon 1 Dec 2025 7:05 PM"),  # the day before, in New York
    (datetime(2026, 12, 4, 4, 59, tzinfo=UTC), "Today 11:59 PM"),  # still Thursday in New York
    (datetime(2026, 12, 4, 5, 0, tzinfo=UTC), "Tomorrow 12:00 AM"),
])
def test_times_read_in_the_agents_zone_relative_to_today(moment, said):
    assert words.day_and_time(moment, NY, NOW) == said


def test_a_naive_time_is_utc_and_a_zone_is_named_as_people_name_it():
    assert words.clock(datetime(2026, 12, 3, 12, 0), NY) == "7:00 AM"
    assert words.zone_name("America/Los_Angeles") == "Los Angeles" and words.zone_name("UTC") == "UTC"
    assert words.their_time(NOW, "America/Los_Angeles") == "12:02 PM Thu (Los Angeles)"


@pytest.mark.parametrize("seconds, said", [(None, "0 s"), (0, "0 s"), (35, "35 s"), (59.6, "1 min"), (90, "2 min"),
                                           (240, "4 min"), (3600, "1 h"), (3900, "1 h 5 min")])
def test_durations(seconds, said):
    assert words.duration(seconds) == said


def test_codes_become_words():
    assert words.callback_state(State.in_call) == "on the phone now"
    assert words.callback_mode(Mode.agent_first) == "rings the agent first"
    assert words.outcome(Outcome.agent_declined) == "the agent declined"
    assert words.label("order_id") == "Order id" and words.label("os_version") == "OS version"
    assert words.phone("+14155550123") == "+1 415-555-0123" and words.phone("anonymous") == "anonymous"
    assert words.minutes_late(0) == "on time" and words.minutes_late(65) == "1 h 5 min late"
    every = [*words.CALL_STATUS.values(), *words.CALLBACK_STATE.values(), *words.CALLBACK_MODE.values(),
             *words.OUTCOME.values(), *(words.outcome(o) for o in Outcome), *(words.callback_state(s) for s in State)]
    assert not [w for w in every if MACHINE.search(w)]


def test_authors_name_their_role_once():
    def said(author: str, name: str | None) -> str:
        return words.author(Message(id="m", author=author, name=name, text="hi", sent_at=NOW))
    assert [said("customer", "Jane"), said("agent", "Sam"), said("bot", None), said("customer", None),
            said("bot", "Voicemail")] == ["Jane (customer)", "Sam (agent)", "Bot", "Customer", "Voicemail (bot)"]


def test_a_confirmed_call_is_told_in_one_line_with_the_agent_by_name():
    told = call(("matched_caller_id", {"threads": ["t-1"]}), ("pressed", {"value": "1"}),
                ("dialling_agent", {"agent_id": "sam"}), ("agent_answered", {"agent_id": "sam"}),
                ("agent_accepted", {"agent_id": "sam"}),
                ("dial_ended", {"status": "completed", "agent_id": "sam", "duration": "250", "bridged": "true"}),
                ("status", {"status": "completed"}), ("disposition", {"value": "follow-up", "agent_id": "sam"}),
                status="completed", ended_at=NOW, duration=260)
    assert words.story(told, NAMES) == "called in, pressed 1, talked 4 min with Sam, Sam marked it follow-up needed"
    assert words.reason(told, "App crashes at login") == "confirmed: App crashes at login"


def test_a_callback_answered_with_1_reads_called_back_pressed_1_talked():
    told = call(("callback_answered", {"callback_id": "cb-1"}), ("pressed", {"value": "1"}),
                ("dialling_agent", {"agent_id": "sam"}),
                ("dial_ended", {"status": "completed", "agent_id": "sam", "duration": "35"}),
                direction="outbound-api", status="completed", ended_at=NOW)
    assert words.story(told, NAMES) == "called back, pressed 1, talked 35 s with Sam"
    assert words.reason(told, "App crashes at login") == "callback: App crashes at login"


def test_calls_that_found_no_one_say_what_happened():
    voicemail = call(("matched_caller_id", {"threads": ["t-1"]}), ("said", {"value": "yes"}),
                     ("no_agent_available", {}), ("voicemail", {"duration": "12"}), status="completed", ended_at=NOW)
    assert words.story(voicemail, NAMES) == "called in, said “yes”, nobody was free, left a voicemail (12 s)"
    declined = call(("dialling_agent", {"agent_id": "lee"}), ("agent_declined", {"agent_id": "lee"}),
                    ("dial_ended", {"status": "no-answer", "agent_id": "lee", "bridged": "false"}),
                    status="completed", ended_at=NOW, duration=40)
    assert words.story(declined, NAMES) == "called in, Lee declined, Lee: no answer, lasted 40 s"
    stranger = call(("no_caller_id_match", {}), ("entered_code", {"valid": False}), ("entered_code", {"valid": False}),
                    ("dialling_agent", {"agent_id": "ghost"}), thread_id=None)
    assert words.story(stranger, NAMES) == ("called in, number not recognised, gave a wrong call code, "
                                            "rang an agent, still on the phone")
    assert words.reason(stranger, "") == "no match"


def test_the_reason_names_how_the_ivr_found_the_thread():
    code = call(("no_caller_id_match", {}), ("entered_code", {"valid": True}))
    chose = call(("matched_caller_id", {"threads": ["t-1", "t-2"]}), ("pressed", {"value": "2"}))
    assert words.reason(code, "Refund") == "call code"
    assert words.reason(chose, "Refund") == "chose: Refund"
    assert words.reason(None, "Refund") == "no call yet"


def test_every_step_kind_reads_without_codes():
    kinds = ["closed", "caller_id_not_verified", "no_caller_id_match", "matched_caller_id", "pressed", "said",
             "entered_code", "no_agent_available", "dialling_agent", "agent_answered", "agent_accepted",
             "agent_declined", "dial_ended", "voicemail", "callback_answered", "status", "recorded", "disposition",
             "some_future_step"]
    told = [words.step(Step(at=NOW, kind=kind, detail={"agent_id": "sam", "status": "busy"}), NAMES) for kind in kinds]
    assert not [t for t in told if t and MACHINE.search(t)]


def test_a_callback_reads_in_one_line_with_their_time():
    waiting = callback(State.scheduled)
    assert words.callback_line(waiting, NOW) == ("callback scheduled, their time Tomorrow 12:02 PM, "
                                                 "calls the customer first")
    tried = callback(State.exhausted, attempts=[Attempt(number=n, claimed_at=NOW, outcome=Outcome.no_answer)
                                                for n in (1, 2, 3)])
    assert words.callback_line(tried, NOW) == ("callback gave up: nobody answered, calls the customer first, "
                                               "3 attempts, last: no answer")


def test_the_call_state_follows_the_agents_leg():
    assert briefing.call_state(None, NOW).state == "none"
    menu = call(("matched_caller_id", {"threads": ["t-1"]}))
    ringing = call(("pressed", {"value": "1"}), ("dialling_agent", {"agent_id": "sam"}))
    connected = call(("dialling_agent", {"agent_id": "sam"}), ("agent_answered", {"agent_id": "sam"}),
                     ("agent_accepted", {"agent_id": "sam"}))
    ended = call(status="completed", ended_at=NOW, duration=240)
    assert [briefing.call_state(c, NOW).state for c in (menu, ringing, connected, ended)] == [
        "menu", "ringing", "connected", "ended"]
    assert briefing.call_state(ended, NOW).text == "Call ended after 4 min"
    assert briefing.call_state(connected, NOW).since == NOW + timedelta(seconds=2)
    assert briefing.is_live(menu, NOW) and not briefing.is_live(menu, NOW + briefing.STALE_AFTER)


def test_the_timeline_puts_calls_and_callbacks_newest_first():
    earlier = call(("pressed", {"value": "1"}), status="completed", ended_at=NOW).model_copy(
        update={"started_at": NOW - timedelta(days=1)})
    entries = briefing.timeline([earlier], [callback(State.scheduled)], NAMES, NOW)
    assert [e.at for e in entries] == [NOW + timedelta(days=1), NOW - timedelta(days=1)]
    assert entries[1].call is earlier and entries[1].text == "called in, pressed 1"
    assert briefing.current_call([earlier], "CA-other") is earlier and briefing.current_call([], None) is None


def test_phone_numbers_are_written_to_be_read_and_a_browser_phone_is_named_in_words() -> None:
    assert words.phone("+14155550123") == "+1 415-555-0123"
    assert words.phone("client:sam.browser") == "a browser phone"
    assert words.phone("") == "" and words.phone("anonymous") == "anonymous"
