"""The post-call survey through the carrier: after the agent hangs up, the customer presses a score, which reaches
the call's record and the thread (call.feedback); a comment after the beep is kept on the call."""

from __future__ import annotations

from typing import Any

from flask import Flask

from callbacks.schemas import State
from desk import words
from tests.support.api import AUTH
from tests.support.callbacks import ask, work
from tests.support.carrier import AGENT, CUSTOMER, TALK, heard, wait_until
from tests.support.voice import ALWAYS, Line


def feedback_events(app: Flask) -> list[dict[str, Any]]:
    events = app.test_client().get("/api/v1/threads/t-1/events", headers=AUTH).get_json()["events"]
    return [e for e in events if e["type"] == "call.feedback"]


def scored(line: Line, sid: str) -> list[dict[str, Any]]:
    record = wait_until(lambda: (r := line.history(sid)) and any(s.kind == "feedback" for s in r.steps) and r,
                        message="the score on the call")
    return [s.detail for s in record.steps if s.kind == "feedback"]


def test_a_caller_rates_the_call_after_the_agent_hangs_up(line: Line) -> None:
    line.number(survey=True)
    line.thread("t-1")
    line.script(CUSTOMER, keys=["1", "4"], record_seconds=3, hangup_after=4000)
    line.script(AGENT, keys=["1"], hangup_after=TALK)  # the agent hangs up first; the caller stays for the survey
    sid = line.call_in(CUSTOMER)
    call = line.finished(sid)
    said = heard(call)
    assert any("how did we do" in text for text in said), said
    assert scored(line, sid) == [{"score": 4}]
    [event] = wait_until(lambda: feedback_events(line.app), message="the call.feedback event")
    assert event["data"]["score"] == 4 and event["data"]["call_sid"] == sid
    record = line.history(sid)
    assert any(s.kind == "feedback_comment" and s.detail["recording_url"] for s in record.steps)  # the comment
    story = words.story(record, {"sam": "Sam"})
    assert "rated the call 4 out of 5, left a comment" in story, story  # as the desk's timeline tells it


def test_a_customer_called_back_rates_the_call_too(cb_line: Line) -> None:
    cb_line.number(calling_window=ALWAYS, survey=True)
    cb_line.script(CUSTOMER, keys=["1", "4"], hangup_after=4000)  # 1: talk now; 4: the score
    cb_line.script(AGENT, keys=["1"], hangup_after=TALK)
    body = ask(cb_line).get_json()
    work(cb_line)
    [event] = wait_until(lambda: feedback_events(cb_line.app), message="the call.feedback event")
    assert event["data"]["score"] == 4
    assert wait_until(lambda: (c := cb_line.app.extensions["threadline.callbacks"].get(body["id"])).state
                      == State.completed and c)
    assert scored(cb_line, event["data"]["call_sid"]) == [{"score": 4}]


def test_without_the_survey_the_caller_hears_goodbye_and_nothing_is_asked(line: Line) -> None:
    line.thread("t-1")
    line.script(CUSTOMER, keys=["1", "4"], hangup_after=4000)
    line.script(AGENT, keys=["1"], hangup_after=TALK)
    sid = line.call_in(CUSTOMER)
    said = heard(line.finished(sid))
    assert not any("how did we do" in text for text in said) and "Goodbye." in said
    assert not any(s.kind == "feedback" for s in line.history(sid).steps) and feedback_events(line.app) == []


def test_a_key_that_is_no_score_ends_the_call_without_feedback(line: Line) -> None:
    line.number(survey=True)
    line.thread("t-1")
    line.script(CUSTOMER, keys=["1", "9"], hangup_after=4000)
    line.script(AGENT, keys=["1"], hangup_after=TALK)
    sid = line.call_in(CUSTOMER)
    said = heard(line.finished(sid))
    assert any("how did we do" in text for text in said) and said[-1] == "Goodbye."
    assert feedback_events(line.app) == []
