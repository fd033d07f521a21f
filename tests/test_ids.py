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
