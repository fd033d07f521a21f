"""Ids that become part of Redis keys cannot spell another record's key: refused with 422, or unable to collide."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import keys
from tests.support.api import thread_body

# Every key family named by a thread id.
THREAD_KEYS = (keys.thread, keys.thread_messages, keys.thread_message_order, keys.thread_logs, keys.thread_calls,
               keys.thread_events, keys.thread_live_callback, keys.thread_callbacks)
ids = st.from_regex(keys.ID_PATTERN, fullmatch=True)


@given(ids, ids)
def test_two_different_ids_never_share_a_key(first: str, second: str) -> None:
    if first != second:
        assert not {f(first) for f in THREAD_KEYS} & {f(second) for f in THREAD_KEYS}


@pytest.mark.parametrize("bad", ["X:order", "X:calls", "a{b}", "a*", "a..b", "..", "x" * 129])
def test_a_thread_id_that_could_reach_another_key_is_refused(client, auth, bad: str) -> None:
    assert client.put("/api/v1/threads/X", json=thread_body(), headers=auth).status_code == 201
    path = f"/api/v1/threads/{quote(bad, safe='')}"
    for response in (client.put(path, json=thread_body(), headers=auth), client.get(path, headers=auth),
                     client.get(f"{path}/calls", headers=auth), client.post(f"{path}/callbacks", headers=auth,
                                                                            json={"number": "+14155550100"})):
        assert response.status_code == 422, (path, response.status_code)
        assert response.get_json()["error"]["field"] == "thread_id"
    neighbour = client.get("/api/v1/threads/X", headers=auth)
    assert neighbour.status_code == 200 and neighbour.get_json()["subject"] == thread_body()["subject"]


def test_a_slash_in_an_id_is_no_route_and_touches_nothing(client, auth) -> None:
    assert client.put("/api/v1/threads/a", json=thread_body(), headers=auth).status_code == 201
    assert client.put("/api/v1/threads/a%2Fb", json=thread_body(subject="Other"), headers=auth).status_code == 404
    assert client.get("/api/v1/threads/a", headers=auth).get_json()["subject"] == thread_body()["subject"]


def test_a_callback_id_of_another_shape_is_refused(client, auth) -> None:
    response = client.get(f"/api/v1/callbacks/{quote('cb_1:attempts', safe='')}", headers=auth)
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "callback_id"


def test_the_openapi_document_states_the_id_rule(client) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    thread_param = next(p for p in document["paths"]["/threads/{thread_id}"]["get"]["parameters"]
                        if p["name"] == "thread_id")
    assert thread_param["schema"] == {"type": "string", "pattern": keys.ID_PATTERN, "maxLength": 128}
    assert re.fullmatch(thread_param["schema"]["pattern"].strip("^$"), "t-1.a~b_c")


SHAPES = ["X:order", "X:calls", "a{b}", "a*", "a/b", "a..b", "..", "x" * 200]
ADMIN = {"Authorization": "Bearer admin-key"}


def message_body(message_id: str, text: str) -> dict[str, str]:
    return {"id": message_id, "author": "customer", "text": text, "sent_at": "2026-11-22T10:00:00Z"}


@pytest.mark.parametrize("odd", SHAPES)
def test_a_message_id_of_any_shape_is_refused_or_kept_beside_its_neighbours(client, auth, odd: str) -> None:
    """Message ids are members of the thread's keys, never part of a key name: at worst they are one more message."""
    assert client.put("/api/v1/threads/X", json=thread_body(), headers=auth).status_code == 201
    neighbour = client.get("/api/v1/threads/X", headers=auth).get_json()["messages"]
    response = client.post("/api/v1/threads/X/messages", json=message_body(odd, "odd"), headers=auth)
    assert response.status_code in (201, 422), response.get_data(as_text=True)
    after = client.get("/api/v1/threads/X", headers=auth).get_json()["messages"]
    if response.status_code == 422:
        assert response.get_json()["error"]["field"] == "id" and after == neighbour
    else:
        assert [m for m in after if m["id"] != odd] == neighbour
        assert [m["text"] for m in after if m["id"] == odd] == ["odd"]
    assert client.get("/api/v1/threads?phone=%2B14155550123", headers=auth).status_code == 200


@pytest.mark.parametrize("odd", SHAPES)
def test_an_agent_id_of_another_shape_is_refused_and_touches_no_agent(make_app, odd: str) -> None:
    admin = make_app(THREADLINE_ADMIN_KEYS=["admin-key"]).test_client()
    sam = {"name": "Sam", "phone": "+14155550777", "status": "available"}
    assert admin.put("/api/v1/agents/X", json=sam, headers=ADMIN).status_code == 201
    response = admin.put(f"/api/v1/agents/{quote(odd, safe='')}", json={**sam, "name": "Other"}, headers=ADMIN)
    if odd == "a..b":  # a harmless name here: letters and dots, its own key
        assert response.status_code == 201
    else:
        assert response.status_code in (404, 422), (odd, response.status_code)
    assert [(a["id"], a["name"]) for a in admin.get("/api/v1/agents", headers=ADMIN).get_json()["agents"]
            if a["id"] != "a..b"] == [("X", "Sam")]


@pytest.mark.parametrize("odd", SHAPES)
def test_a_number_of_another_shape_is_refused(make_app, odd: str) -> None:
    admin = make_app(THREADLINE_ADMIN_KEYS=["admin-key"]).test_client()
    response = admin.get(f"/api/v1/numbers/{quote(odd, safe='')}", headers=ADMIN)
    assert response.status_code in (404, 422), (odd, response.status_code)
    if response.status_code == 422:
        assert response.get_json()["error"]["field"] == "number"
