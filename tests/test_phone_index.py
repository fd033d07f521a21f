"""The phone index follows status and phone changes, so an inbound call finds only open threads."""

from __future__ import annotations

from datetime import UTC, datetime

from context.schemas import Message, ThreadIn
from context.store import ThreadStore
from tests.support.api import thread_body

PHONE = "+14155550123"
OTHER = "+14155550199"


def thread(**changes) -> ThreadIn:
    return ThreadIn.model_validate(thread_body(**changes))


def at(hour: int) -> datetime:
    return datetime(2026, 11, 22, hour, tzinfo=UTC)


def test_resolving_moves_a_thread_out_of_the_open_index_and_reopening_brings_it_back(app):
    store: ThreadStore = app.extensions["threadline.threads"]
    store.put("t-1", thread(), now=at(9))
    assert store.open_thread_ids(PHONE) == ["t-1"]

    store.put("t-1", thread(status="pending"), now=at(10))
    assert store.open_thread_ids(PHONE) == ["t-1"]

    store.put("t-1", thread(status="resolved"), now=at(11))
    assert store.open_thread_ids(PHONE) == []
    assert [t.id for t in store.find_by_phone(PHONE)] == ["t-1"]

    store.put("t-1", thread(status="open"), now=at(12))
    assert store.open_thread_ids(PHONE) == ["t-1"]
    assert [t.id for t in store.find_by_phone(PHONE)] == ["t-1"]  # in the open index only, not listed twice


def test_changing_the_customers_phone_moves_the_thread_to_the_new_number(app):
    store: ThreadStore = app.extensions["threadline.threads"]
    store.put("t-1", thread(), now=at(9))
    store.put("t-1", thread(customer={"phone": OTHER}), now=at(10))
    assert store.open_thread_ids(PHONE) == []
    assert store.find_by_phone(PHONE) == []
    assert store.open_thread_ids(OTHER) == ["t-1"]


def test_open_threads_are_ordered_by_last_activity(app):
    store: ThreadStore = app.extensions["threadline.threads"]
    store.put("a", thread(messages=[]), now=at(9))
    store.put("b", thread(messages=[]), now=at(10))
    assert store.open_thread_ids(PHONE) == ["b", "a"]
    store.append_message("a", Message(id="new", author="customer", text="still broken", sent_at=at(11)))
    assert store.open_thread_ids(PHONE) == ["a", "b"]
    # An older message does not move activity back.
    store.append_message("b", Message(id="old", author="customer", text="earlier", sent_at=at(1)))
    assert store.open_thread_ids(PHONE) == ["a", "b"]
    assert store.get("b").last_activity_at == at(10)


def test_lookup_reads_only_the_callers_index(app):
    store: ThreadStore = app.extensions["threadline.threads"]
    for i in range(50):
        store.put(f"other-{i}", thread(customer={"phone": f"+1415555{1000 + i}"}, messages=[]), now=at(9))
    store.put("mine", thread(messages=[]), now=at(9))
    assert store.open_thread_ids(PHONE) == ["mine"]


def test_a_light_read_takes_only_the_newest_messages_and_no_logs(app):
    store: ThreadStore = app.extensions["threadline.threads"]
    messages = [{"id": f"m{i}", "author": "customer", "text": f"message {i}",
                 "sent_at": f"2026-11-22T10:{i:02}:00Z"} for i in range(30)]
    store.put("t-1", thread(messages=messages))
    light = store.get("t-1", newest=5)
    assert [m.id for m in light.messages] == ["m25", "m26", "m27", "m28", "m29"]
    assert light.logs == [] and len(store.get("t-1").logs) == 1
    assert light.subject == store.get("t-1").subject
