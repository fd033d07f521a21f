"""What a worker killed mid-dial leaves, and how the sweeper recovers each case: claimed and not dialled, dialled and
not recorded, ended unheard, lost from the queue. The processes themselves are killed by tests/test_chaos.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rq import SimpleWorker

from callbacks.recovery import sweep
from callbacks.schemas import Attempt, State
from tests.support.api import AUTH
from tests.support.carrier import SUPPORT, wait_until
from tests.support.voice import calls_to


def _past_the_grace() -> datetime:
    """A moment just past the sweep grace and reconcile delays of these tests (1 s at most)."""
    return datetime.now(UTC) + timedelta(seconds=1.1)


def _claim(app, callback_id: str) -> None:
    """What a worker does before it dies: the attempt is claimed, no call recorded."""

    def claim(callback):
        now = datetime.now(UTC)
        callback.scheduled_for = now  # it was due: that's when workers claim
        callback.attempts.append(Attempt(number=1, claimed_at=now))
        callback.state = State.dialing
        return callback

    app.extensions["threadline.callbacks"].update(callback_id, claim)


def _in_three_days(cb_line) -> str:
    response = cb_line.app.test_client().post("/api/v1/threads/t-1/callbacks", headers=AUTH,
                                              json={"number": SUPPORT, "when": "in 3 days"})
    return response.get_json()["id"]


def test_a_worker_that_died_after_claiming_but_before_dialling_is_redialled_once(cb_line):
    app = cb_line.app
    app.config.update(RECONCILE_AFTER_SECONDS=0)
    callback_id = _in_three_days(cb_line)
    _claim(app, callback_id)
    cb_line.script("+14155550123", answer="busy")
    with app.app_context():
        assert sweep(datetime.now(UTC)) == {"requeued": 0, "reconciled": 1, "redelivered": 0}
    queue = app.extensions["threadline.queue"]
    SimpleWorker([queue], connection=queue.connection).work(burst=True, with_scheduler=True)
    callback = wait_until(lambda: (c := app.extensions["threadline.callbacks"].get(callback_id)).attempts and
                          c.attempts[0].outcome and c)
    assert len(callback.attempts) == 1 and len(calls_to(cb_line, "+14155550123")) == 1


def test_a_worker_that_died_after_dialling_has_its_call_adopted_not_repeated(cb_line):
    app = cb_line.app
    app.config.update(RECONCILE_AFTER_SECONDS=0)
    callback_id = _in_three_days(cb_line)
    _claim(app, callback_id)
    cb_line.script("+14155550123", answer="busy")
    call = app.extensions["threadline.twilio"].calls.create(
        to="+14155550123", from_=SUPPORT, twiml="<Response><Hangup/></Response>")  # placed, then the worker died
    with app.app_context():
        assert sweep(datetime.now(UTC)) == {"requeued": 0, "reconciled": 1, "redelivered": 0}
    callback = app.extensions["threadline.callbacks"].get(callback_id)
    assert callback.attempts[0].call_sid == call.sid and callback.state == State.dialing
    assert len(calls_to(cb_line, "+14155550123")) == 1
    with app.app_context():
        # Adopted: nothing left to do.
        assert sweep(datetime.now(UTC)) == {"requeued": 0, "reconciled": 0, "redelivered": 0}


def test_an_attempt_whose_end_was_never_heard_is_closed_from_twilios_record(cb_line):
    app = cb_line.app
    app.config.update(RECONCILE_AFTER_SECONDS=0, CALL_CHECK_SECONDS=0)
    callback_id = _in_three_days(cb_line)
    _claim(app, callback_id)
    cb_line.script("+14155550123", answer="busy")
    # The call was placed and recorded, but its status callback never reached us.
    call = app.extensions["threadline.twilio"].calls.create(to="+14155550123", from_=SUPPORT,
                                                           twiml="<Response><Hangup/></Response>")
    store = app.extensions["threadline.callbacks"]

    def placed(callback):
        callback.attempts[-1].call_sid = call.sid
        return callback

    store.update(callback_id, placed)
    wait_until(lambda: app.extensions["threadline.twilio"].calls(call.sid).fetch().status == "busy")
    with app.app_context():
        assert sweep(datetime.now(UTC)) == {"requeued": 0, "reconciled": 1, "redelivered": 0}
    closed = store.get(callback_id)
    assert closed.attempts[0].outcome == "busy" and closed.state == State.scheduled
    assert len(calls_to(cb_line, "+14155550123")) == 1


def test_a_callback_late_only_because_the_queue_is_long_is_not_queued_again(cb_line):
    app = cb_line.app
    app.config.update(SWEEP_GRACE_SECONDS=0)
    body = cb_line.app.test_client().post("/api/v1/threads/t-1/callbacks", headers=AUTH,
                                          json={"number": SUPPORT}).get_json()
    queue = app.extensions["threadline.queue"]
    assert len(queue.job_ids) == 1  # its dial job waits in the queue
    later = _past_the_grace()  # now it is overdue
    with app.app_context():
        assert sweep(later) == {"requeued": 0, "reconciled": 0, "redelivered": 0}
    assert len(queue.job_ids) == 1
    queue.empty()  # the job is lost (a worker died with it)
    with app.app_context():
        assert sweep(later)["requeued"] == 1
        assert sweep(later)["requeued"] == 0  # the requeued job waits: not queued again
    assert callback_state(app, body["id"]) == State.scheduled


def callback_state(app, callback_id: str) -> State:
    return app.extensions["threadline.callbacks"].get(callback_id).state
