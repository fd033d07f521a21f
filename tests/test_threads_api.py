"""The threads API through HTTP requests: round trips, idempotency, limits."""

from __future__ import annotations

from typing import Any

from tests.support.api import thread_body

URL = "/api/v1/threads"


def put(client: Any, auth: dict[str, str], thread_id: str = "t-1", **changes: Any) -> Any:
    return client.put(f"{URL}/{thread_id}", json=thread_body(**changes), headers=auth)


def message(mid: str, sent_at: str = "2026-11-22T10:05:00Z", text: str = "hello", author: str = "agent") -> dict:
    return {"id": mid, "author": author, "text": text, "sent_at": sent_at}


def test_put_creates_then_replaces_and_get_returns_the_whole_thread(client, auth):
    created = put(client, auth)
    assert created.status_code == 201
    thread = client.get(f"{URL}/t-1", headers=auth).get_json()
    assert thread == created.get_json()
    assert thread["id"] == "t-1"
    assert thread["customer"]["phone"] == "+14155550123"
    assert thread["customer"]["time_zone"] == "America/Los_Angeles"
    assert thread["device"] == {"platform": "iOS", "os_version": "17.2", "app_version": "3.2.1",
                                "model": "iPhone 14"}
    assert thread["metadata"] == {"plan": "pro", "order_id": "A-1009"}
    assert [m["text"] for m in thread["messages"]] == ["The app closes as soon as I log in"]
    assert thread["messages"][0]["attachments"][0]["url"] == "https://files.example.com/crash.png"
    assert thread["logs"] == [{"at": "2026-11-22T09:59:58Z", "level": "error",
                               "message": "NullPointerException in LoginViewController"}]

    replaced = put(client, auth, subject="Login fixed?", status="pending", messages=[], logs=[], device=None)
    assert replaced.status_code == 200
    thread = replaced.get_json()
    assert (thread["subject"], thread["status"], thread["device"]) == ("Login fixed?", "pending", None)
    # A PUT never drops messages or logs already accepted.
    assert [m["id"] for m in thread["messages"]] == ["m1"]
    assert len(thread["logs"]) == 1
    assert thread["created_at"] == created.get_json()["created_at"]


def test_put_upserts_messages_by_id_and_orders_them_by_sent_at(client, auth):
    put(client, auth, messages=[message("b", "2026-11-22T10:02:00Z"), message("a", "2026-11-22T10:01:00Z")])
    edited = put(client, auth, messages=[message("a", "2026-11-22T10:01:00Z", text="edited")]).get_json()
    assert [(m["id"], m["text"]) for m in edited["messages"]] == [("a", "edited"), ("b", "hello")]


def test_only_subject_and_customer_phone_are_required(client, auth):
    response = client.put(f"{URL}/minimal", json={"subject": "Hi", "customer": {"phone": "+442079460958"}},
                          headers=auth)
    assert response.status_code == 201
    thread = response.get_json()
    assert thread["status"] == "open"
    assert thread["customer"]["phone"] == "+442079460958"
    assert (thread["messages"], thread["logs"], thread["metadata"], thread["device"]) == ([], [], {}, None)


def test_message_append_is_idempotent_on_its_id(client, auth):
    put(client, auth)
    first = client.post(f"{URL}/t-1/messages", json=message("m2"), headers=auth)
    again = client.post(f"{URL}/t-1/messages", json=message("m2"), headers=auth)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json() == again.get_json()
    other = client.post(f"{URL}/t-1/messages", json=message("m2", text="something else"), headers=auth)
    assert other.status_code == 409
    assert other.get_json()["error"] == {"code": "conflict", "field": "id",
                                         "message": "message 'm2' already exists with other content"}
    thread = client.get(f"{URL}/t-1", headers=auth).get_json()
    assert [(m["id"], m["text"]) for m in thread["messages"]] == [("m1", "The app closes as soon as I log in"),
                                                                  ("m2", "hello")]


def test_logs_accept_one_entry_or_a_list(client, auth):
    put(client, auth, logs=[])
    one = client.post(f"{URL}/t-1/logs", json={"at": "2026-11-22T10:00:00Z", "level": "info", "message": "boot"},
                      headers=auth)
    assert one.status_code == 201 and one.get_json() == {"accepted": 1, "stored": 1}
    many = client.post(f"{URL}/t-1/logs", headers=auth, json=[
        {"at": "2026-11-22T09:00:00Z", "level": "warning", "message": "slow"},
        {"at": "2026-11-22T11:00:00+01:00", "level": "fatal", "message": "crash"}])
    assert many.get_json() == {"accepted": 2, "stored": 3}
    logs = client.get(f"{URL}/t-1", headers=auth).get_json()["logs"]
    assert [(e["at"], e["message"]) for e in logs] == [
        ("2026-11-22T09:00:00Z", "slow"), ("2026-11-22T10:00:00Z", "boot"), ("2026-11-22T10:00:00Z", "crash")]


def test_unknown_thread_is_404_for_reads_and_appends(client, auth):
    for response in (client.get(f"{URL}/nope", headers=auth),
                     client.post(f"{URL}/nope/messages", json=message("m1"), headers=auth),
                     client.post(f"{URL}/nope/logs", json={"at": "2026-11-22T10:00:00Z", "level": "info",
                                                           "message": "x"}, headers=auth)):
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"


def test_threads_by_phone_list_open_first_then_newest_activity(client, auth):
    put(client, auth, "old-open", messages=[message("x", "2026-11-01T10:00:00Z")])
    put(client, auth, "resolved", status="resolved")
    put(client, auth, "new-open")
    put(client, auth, "other-customer", customer={"phone": "+14155550199"})
    client.post(f"{URL}/old-open/messages", json=message("late", "2030-01-01T00:00:00Z"), headers=auth)

    for query in ("phone=%2B14155550123", "phone=+14155550123"):  # '+' unencoded arrives as a space
        listed = client.get(f"{URL}?{query}", headers=auth)
        assert listed.status_code == 200
        assert [t["id"] for t in listed.get_json()["threads"]] == ["old-open", "new-open", "resolved"]
    summary = client.get(f"{URL}?phone=%2B14155550123&limit=1", headers=auth).get_json()["threads"]
    assert [(t["id"], t["message_count"]) for t in summary] == [("old-open", 2)]
    assert "messages" not in summary[0]
    assert client.get(f"{URL}?phone=%2B14155550100", headers=auth).get_json() == {"threads": []}


def test_newest_thousand_messages_are_kept(client, auth):
    batch = [message(f"m{i:04}", f"2026-11-22T10:{i // 60 % 60:02}:{i % 60:02}Z") for i in range(1000)]
    put(client, auth, messages=batch)
    for i in range(1000, 1005):
        client.post(f"{URL}/t-1/messages", json=message(f"m{i:04}", f"2026-11-23T00:00:{i % 60:02}Z"), headers=auth)
    ids = [m["id"] for m in client.get(f"{URL}/t-1", headers=auth).get_json()["messages"]]
    assert len(ids) == 1000
    assert ids[0] == "m0005" and ids[-1] == "m1004"
    # The id of a message trimmed away can't leave stale data behind it.
    assert "m0000" not in ids


EDGE_DATES = ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00")


def test_dates_that_cannot_be_stored_in_utc_are_refused_naming_the_field(client, auth):
    put(client, auth)
    for stamp in EDGE_DATES:
        sent = client.post(f"{URL}/t-1/messages", json=message("edge", sent_at=stamp), headers=auth)
        assert (sent.status_code, sent.get_json()["error"]["field"]) == (422, "sent_at"), stamp
        logged = client.post(f"{URL}/t-1/logs", json={"at": stamp, "level": "info", "message": "boot"},
                             headers=auth)
        assert logged.status_code == 422 and logged.get_json()["error"]["field"].endswith("at"), stamp
        whole = put(client, auth, messages=[message("edge", sent_at=stamp)])
        assert (whole.status_code, whole.get_json()["error"]["field"]) == (422, "messages[0].sent_at"), stamp
