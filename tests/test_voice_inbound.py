"""Inbound calls end to end: the carrier dials Threadline's webhooks, scripted phones press keys."""

from __future__ import annotations

import requests

from tests.support.carrier import AGENT, CUSTOMER, OUTLASTS_AGENT, SUPPORT, TALK, heard, wait_until
from tests.support.voice import GREETING, LAST_WROTE, OTHER_AGENT
from voice import screenpop


def steps(record) -> list[str]:
    return [step.kind for step in record.steps]


def test_a_known_caller_says_yes_and_reaches_an_agent_whose_screen_pops(line, redis_client):
    line.thread("t-1")
    line.script(CUSTOMER, keys=["1"], hangup_after=OUTLASTS_AGENT)
    line.script(AGENT, keys=["1"], hangup_after=TALK)
    desk = screenpop.listen(redis_client, "sam")
    sid = line.call_in(CUSTOMER)
    call = line.finished(sid)

    assert heard(call)[:3] == [GREETING, LAST_WROTE, "Thanks. Connecting you to someone who can see your conversation."]
    agent_leg = call["legs"][0]
    assert agent_leg["to"] == AGENT
    assert heard(agent_leg) == ["Acme call from Jane about App crashes at login. Last message: The app closes as "
                                "soon as I log in. Press 1 to accept."]
    assert heard(call)[-1] == "Goodbye."

    [pop] = screenpop.recent(redis_client, "sam", 10)
    assert (pop.thread_id, pop.call_sid, pop.agent_call_sid) == ("t-1", sid, agent_leg["sid"])
    live = [m for m in (desk.get_message(timeout=0.5) for _ in range(6)) if m]  # the desk's subscription got it
    assert [screenpop.ScreenPop.model_validate_json(m["data"]) for m in live] == [pop]  # live names its entry
    desk.close()

    record = wait_until(lambda: (r := line.history(sid)) and r.status == "completed" and r)
    assert record.thread_id == "t-1" and record.agent_id == "sam" and record.caller == CUSTOMER
    assert steps(record)[:5] == ["matched_caller_id", "pressed", "dialling_agent", "agent_answered",
                                 "agent_accepted"]
    assert record.steps[1].detail == {"value": "1"}
    assert int(record.duration) >= TALK
    listed = line.app.test_client().get("/api/v1/threads/t-1/calls",
                                        headers={"Authorization": "Bearer test-key-0123456789"}).get_json()
    assert [c["sid"] for c in listed["calls"]] == [sid]


def test_saying_yes_works_as_well_as_pressing_1(line):
    line.thread("t-1")
    line.script(CUSTOMER, speech=["Yes, that's it"])
    line.script(AGENT, keys=["1"], hangup_after=5)
    call = line.finished(line.call_in(CUSTOMER))
    assert call["legs"] and call["legs"][0]["to"] == AGENT


def test_a_caller_with_several_threads_picks_one_by_key(line):
    def said(day: int) -> list[dict[str, str]]:
        return [{"id": "m1", "author": "customer", "text": "Any news?", "sent_at": f"2030-01-0{day}T10:00:00Z"}]

    line.thread("older", subject="Refund for order A-1009", messages=said(1))
    line.thread("newer", subject="Password reset email never arrives", messages=said(2))
    line.script(CUSTOMER, keys=["2"])
    line.script(AGENT, keys=["1"], hangup_after=5)
    sid = line.call_in(CUSTOMER)
    call = line.finished(sid)
    assert heard(call)[:5] == [
        "Hi Jane. Which conversation are you calling about?",
        "For Password reset email never arrives, press 1.",
        "For Refund for order A-1009, press 2.",
        "For something else, press 0.",
        "Thanks. Connecting you to someone who can see your conversation."]
    assert line.history(sid).thread_id == "older"


def test_an_unknown_caller_enters_the_call_code_from_the_app(line):
    line.thread("t-1", customer={"name": "Jane Doe", "phone": "+14155550999"})
    auth = {"Authorization": "Bearer test-key-0123456789"}
    issued = line.app.test_client().post("/api/v1/threads/t-1/call-code", headers=auth)
    assert issued.status_code == 201
    code = issued.get_json()["code"]
    line.script(CUSTOMER, keys=[code])
    line.script(AGENT, keys=["1"], hangup_after=TALK)
    sid = line.call_in(CUSTOMER)
    call = line.finished(sid)
    assert heard(call)[0] == "If the Acme app shows you a six digit call code, enter it now."
    assert line.history(sid).thread_id == "t-1"
    assert "Jane" in heard(call["legs"][0])[0]
    # Single use: the same code again leads nowhere.
    line.script("+14155550444", keys=[code, code])
    other = line.call_in("+14155550444")
    later = line.finished(other)
    assert "Sorry, that code did not work." in heard(later)
    assert "Connecting you to the next available person at Acme." in heard(later)
    assert heard(later)[-1] == "Goodbye."
    assert line.history(other).thread_id is None


def test_answering_no_leads_to_the_code_then_the_general_line(line):
    line.thread("t-1")
    line.script(CUSTOMER, keys=["2"])  # no, and then nothing at the code prompt
    line.script(AGENT, keys=["1"], hangup_after=TALK)
    sid = line.call_in(CUSTOMER)
    call = line.finished(sid)
    assert heard(call)[:3] == [GREETING, LAST_WROTE, "If the Acme app shows you a six digit call code, enter it now."]
    assert "Connecting you to the next available person at Acme." in heard(call)
    assert heard(call["legs"][0]) == ["Acme support call. Press 1 to accept."]


def test_the_agent_who_last_wrote_in_the_thread_is_rung_first(line):
    messages = [{"id": "m1", "author": "customer", "text": "Help", "sent_at": "2026-11-22T10:00:00Z"},
                {"id": "m2", "author": "agent", "name": "lee", "text": "On it", "sent_at": "2026-11-22T10:05:00Z"}]
    line.thread("t-1", messages=messages)
    line.script(CUSTOMER, keys=["1"])
    line.script(OTHER_AGENT, keys=["1"], hangup_after=5)
    call = line.finished(line.call_in(CUSTOMER))
    assert call["legs"][0]["to"] == OTHER_AGENT


def test_an_available_admin_with_nothing_to_ring_is_passed_over(line):
    line.agent("ada", name="Ada Park", role="admin", status="available")  # no phone, no browser
    line.number(agents=["ada", "lee"])
    line.thread("t-1")
    line.script(CUSTOMER, keys=["1"])
    line.script(OTHER_AGENT, keys=["1"], hangup_after=5)
    call = line.finished(line.call_in(CUSTOMER))
    assert [leg["to"] for leg in call["legs"]] == [OTHER_AGENT]


def test_nobody_available_takes_a_voicemail_into_the_thread(line):
    line.agent("sam", name="Sam Lee", phone=AGENT, status="away")
    line.agent("lee", name="Lee Park", phone=OTHER_AGENT, status="offline")
    line.thread("t-1")
    line.script(CUSTOMER, keys=["1"], record_seconds=6)
    sid = line.call_in(CUSTOMER)
    call = line.finished(sid)
    assert heard(call)[2].startswith("Sorry, nobody can take your call right now.")
    assert heard(call)[-1] == "Thank you. We have your message. Goodbye."
    thread = line.app.extensions["threadline.threads"].get("t-1")
    voicemail = thread.messages[-1]
    assert (voicemail.id, voicemail.author, voicemail.name) == (f"voicemail-{sid}", "bot", "Voicemail")
    assert voicemail.attachments[0].url.startswith(line.carrier.url)
    assert line.history(sid).recording_url == voicemail.attachments[0].url


def test_the_agents_screen_pops_while_their_phone_rings_before_they_answer(line, redis_client):
    line.thread("t-1")
    line.script(CUSTOMER, keys=["1"])
    line.script(AGENT, answer="no-answer")  # it rings, nobody picks up: the agent could still read the thread
    sid = line.call_in(CUSTOMER)
    call = line.finished(sid)
    agent_leg = call["legs"][0]
    assert agent_leg["status"] == "no-answer" and not any(e["kind"] == "answered" for e in agent_leg["events"])
    [pop] = screenpop.recent(redis_client, "sam", 10)
    assert (pop.thread_id, pop.call_sid, pop.agent_call_sid) == ("t-1", sid, agent_leg["sid"])
    ringing = [w for w in agent_leg["webhooks"] if "/voice/agent-ringing" in w["url"]]
    assert [w["status"] for w in ringing] == [204]


def test_an_agent_leg_pops_once_though_its_ringing_arrives_after_its_whisper(line, redis_client):
    requests.put(f"{line.carrier.url}/_carrier/settings", json={"status_callbacks": "reordered"}, timeout=5)
    line.thread("t-1")
    line.script(CUSTOMER, keys=["1"], hangup_after=OUTLASTS_AGENT)
    line.script(AGENT, keys=["1"], hangup_after=TALK)
    sid = line.call_in(CUSTOMER)
    call = line.finished(sid)
    agent_leg = call["legs"][0]

    def ringing() -> list[dict]:
        leg = requests.get(f"{line.carrier.url}/_carrier/calls/{agent_leg['sid']}", timeout=5).json()
        return [w for w in leg["webhooks"] if "/voice/agent-ringing" in w["url"]]
    wait_until(lambda: len(ringing()) == 2, message="the ringing callback, held to the call's end and sent twice")
    [pop] = screenpop.recent(redis_client, "sam", 10)  # the whisper popped it; the late ringing changed nothing
    assert pop.agent_call_sid == agent_leg["sid"]


def test_an_agent_who_declines_the_whisper_leaves_the_caller_a_voicemail(line):
    line.thread("t-1")
    line.script(CUSTOMER, keys=["1"])
    line.script(AGENT, keys=["9"])
    sid = line.call_in(CUSTOMER)
    call = line.finished(sid)
    assert heard(call["legs"][0])[0].endswith("Press 1 to accept.")
    assert any(text.startswith("Sorry, nobody can take your call") for text in heard(call))
    dial = next(s for s in line.history(sid).steps if s.kind == "dial_ended")
    assert dial.detail["status"] == "no-answer"


def test_outside_business_hours_the_caller_hears_so_and_can_leave_a_message(line):
    line.number(business_hours={}, holidays=[])  # open no day of the week
    line.thread("t-1")
    line.script(CUSTOMER, record_seconds=3)
    sid = line.call_in(CUSTOMER)
    call = line.finished(sid)
    assert heard(call)[:2] == ["Thanks for calling Acme. We are closed right now.",
                               "Leave a message after the beep and we will add it to your conversation."]
    assert call["legs"] == []
    assert line.app.extensions["threadline.threads"].get("t-1").messages[-1].name == "Voicemail"


def test_a_number_threadline_does_not_serve_gets_an_apology(line):
    line.carrier.state.add_number("+14155550160").voice_url = f"{line.url}/voice/incoming"
    call = line.finished(line.call_in(CUSTOMER, to="+14155550160"))
    assert heard(call) == ["Sorry, this number is not in service. Goodbye."]


def test_the_customers_locale_is_spoken_when_the_number_offers_it(line):
    line.number(languages=["es-US"])
    line.thread("t-1", customer={"name": "Lucía", "phone": CUSTOMER, "locale": "es-MX"})
    line.script(CUSTOMER, keys=["1"])
    line.script(AGENT, keys=["1"], hangup_after=TALK)
    call = line.finished(line.call_in(CUSTOMER))
    greeting = next(e for e in call["events"] if e["kind"] == "heard")
    assert greeting["text"] == "Hola Lucía. ¿Es sobre App crashes at login? Pulse 1 o diga sí, 2 o diga no."
    assert (greeting["language"], greeting["voice"]) == ("es-US", "Polly.Lupe")
    whisper = next(e for e in call["legs"][0]["events"] if e["kind"] == "heard")
    assert whisper["language"] == "en-US"  # the agent hears the number's own language


def test_status_callbacks_out_of_order_do_not_regress_the_call(line):
    requests.put(f"{line.carrier.url}/_carrier/settings", json={"status_callbacks": "reordered"}, timeout=5)
    line.number(business_hours={})
    sid = line.call_in(CUSTOMER)
    line.finished(sid)
    record = wait_until(lambda: (r := line.history(sid)) and r.status and r)
    assert record.status == "completed"
    assert [s.kind for s in record.steps].count("status") == 1
    assert SUPPORT == record.number
