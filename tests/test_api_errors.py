"""Every class of bad request answers a JSON error naming what is wrong, never a 500 or an HTML page."""

from __future__ import annotations

import pytest

from tests.support.api import API_KEY, thread_body

URL = "/api/v1/threads"


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    return response.get_json()["error"]


@pytest.mark.parametrize("header", [None, "Bearer wrong-key", "Basic " + API_KEY, "Bearer"])
def test_requests_without_a_valid_key_are_401(client, header):
    headers = {"Authorization": header} if header else {}
    error = error_of(client.get(f"{URL}/t-1", headers=headers), 401)
    assert error["code"] == "unauthorized"
    assert client.get(f"{URL}/t-1", headers=headers).headers["WWW-Authenticate"].startswith("Bearer")


def test_with_no_keys_configured_the_api_refuses_everything_and_says_why(make_app):
    client = make_app(THREADLINE_API_KEYS=[]).test_client()
    error = error_of(client.get(f"{URL}/t-1", headers={"Authorization": "Bearer anything"}), 401)
    assert "THREADLINE_API_KEYS" in error["message"]


def test_malformed_json_is_400(client, auth):
    error = error_of(client.put(f"{URL}/t-1", data='{"subject": ', headers={**auth,
                                "Content-Type": "application/json"}), 400)
    assert error["code"] == "invalid_json"


def test_a_body_that_is_not_json_is_415(client, auth):
    error = error_of(client.put(f"{URL}/t-1", data="subject=x", headers={**auth,
                                "Content-Type": "application/x-www-form-urlencoded"}), 415)
    assert error["field"] == "Content-Type"


def test_oversize_body_is_413_and_nothing_is_stored(client, auth):
    body = thread_body(metadata={"blob": "x" * 1000})
    body["messages"] = [{"id": f"m{i}", "author": "customer", "text": "y" * 9000,
                         "sent_at": "2026-11-22T10:00:00Z"} for i in range(120)]
    error = error_of(client.put(f"{URL}/t-1", json=body, headers=auth), 413)
    assert error["code"] == "payload_too_large"
    assert client.get(f"{URL}/t-1", headers=auth).status_code == 404


@pytest.mark.parametrize(("change", "field", "code"), [
    ({"subject": None}, "subject", "invalid_field"),
    ({"subject": 42}, "subject", "invalid_field"),
    ({"status": "closed"}, "status", "invalid_field"),
    ({"colour": "red"}, "colour", "unknown_field"),
    ({"customer": {"name": "Jane"}}, "customer.phone", "missing_field"),
    ({"customer": {"phone": "not a number"}}, "customer.phone", "invalid_field"),
    ({"customer": {"phone": "+1 415 555 012"}}, "customer.phone", "invalid_field"),
    ({"customer": {"phone": "+14155550123", "time_zone": "Mars/Olympus"}}, "customer.time_zone", "invalid_field"),
    ({"metadata": {"nested": {"a": 1}}}, "metadata.nested", "invalid_field"),
    ({"messages": [{"id": "m1", "author": "robot", "text": "x", "sent_at": "2026-11-22T10:00:00Z"}]},
     "messages[0].author", "invalid_field"),
    ({"messages": [{"id": "m1", "author": "bot", "text": "x" * 10_001, "sent_at": "2026-11-22T10:00:00Z"}]},
     "messages[0].text", "invalid_field"),
    ({"messages": [{"id": "m1", "author": "bot", "text": "x", "sent_at": "2026-11-22T10:00:00"}]},
     "messages[0].sent_at", "invalid_field"),
    ({"messages": [{"id": "m1", "author": "bot", "sent_at": "2026-11-22T10:00:00Z",
                    "attachments": [{"name": "a", "url": "javascript:alert(1)"}]}]},
     "messages[0].attachments[0].url", "invalid_field"),
])
def test_invalid_fields_are_422_naming_the_field(client, auth, change, field, code):
    body = thread_body(**change)
    if "subject" in change and change["subject"] is None:
        del body["subject"]
        code = "missing_field"
    error = error_of(client.put(f"{URL}/t-1", json=body, headers=auth), 422)
    assert (error["field"], error["code"]) == (field, code)
    assert error["message"].startswith(field)


def test_a_body_of_the_wrong_shape_is_422(client, auth):
    error = error_of(client.put(f"{URL}/t-1", json=["not", "an", "object"], headers=auth), 422)
    assert error["code"] == "invalid_field"


def test_a_rejected_update_keeps_what_was_accepted(client, auth):
    client.put(f"{URL}/t-1", json=thread_body(), headers=auth)
    error_of(client.put(f"{URL}/t-1", json=thread_body(status="bogus", messages=[]), headers=auth), 422)
    thread = client.get(f"{URL}/t-1", headers=auth).get_json()
    assert thread["status"] == "open" and len(thread["messages"]) == 1


def test_bad_thread_id_and_bad_query_name_their_field(client, auth):
    assert error_of(client.put(f"{URL}/{'x' * 200}", json=thread_body(), headers=auth), 422)["field"] == "thread_id"
    assert error_of(client.get(f"{URL}?phone=12", headers=auth), 422)["field"] == "query.phone"
    assert error_of(client.get(URL, headers=auth), 422)["field"] == "query.phone"
    assert error_of(client.get(f"{URL}?phone=%2B14155550123&limit=0", headers=auth), 422)["field"] == "query.limit"


def test_unknown_paths_and_methods_under_the_api_answer_json(client, auth):
    assert error_of(client.get("/api/v1/nothing-here", headers=auth), 404)["code"] == "not_found"
    assert error_of(client.delete(f"{URL}/t-1", headers=auth), 405)["code"] == "method_not_allowed"


def test_a_405_says_which_methods_are_allowed(client, auth):
    response = client.delete(f"{URL}/t-1/messages", headers=auth)
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert "POST" in {m.strip() for m in response.headers["Allow"].split(",")}
    assert "DELETE" not in response.headers["Allow"]


def test_api_answers_with_customer_data_are_never_stored(client, auth):
    assert client.put(f"{URL}/t-1", json=thread_body(), headers=auth).status_code == 201
    read = client.get(f"{URL}/t-1", headers=auth)
    assert read.status_code == 200 and read.headers["Cache-Control"] == "no-store"
    assert client.get(f"{URL}/missing", headers=auth).headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("body", ["[" * 1000 + "]" * 1000, '{"a":' * 1000 + "1" + "}" * 1000,
                                  '{"subject": "x", "metadata": ' + '{"a":' * 1000 + "1" + "}" * 1001,
                                  "[" * 100_000 + "]" * 100_000])
def test_json_nested_past_the_limit_is_400_naming_the_body(client, auth, body):
    error = error_of(client.put(f"{URL}/t-1", data=body, headers={**auth, "Content-Type": "application/json"}), 400)
    assert (error["code"], error["field"]) == ("too_deep", "body")


def test_brackets_inside_strings_do_not_count_as_nesting(client, auth):
    response = client.put(f"{URL}/t-1", json=thread_body(subject="[{" * 40 + "\\\"[", metadata={"a": "[" * 90}),
                          headers=auth)
    assert response.status_code == 201, response.get_data(as_text=True)


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "right/UTC", "posix/America/New_York"])
def test_pseudo_time_zones_are_refused_naming_the_field(client, auth, zone):
    response = client.put(f"{URL}/t-1", json=thread_body(customer={"phone": "+14155550123", "time_zone": zone}),
                          headers=auth)
    error = error_of(response, 422)
    assert error["field"] == "customer.time_zone"


@pytest.mark.parametrize("zone", ["UTC", "Etc/UTC", "US/Eastern", "Asia/Kolkata"])
def test_real_zones_and_their_links_are_accepted(client, auth, zone):
    response = client.put(f"{URL}/t-1", json=thread_body(customer={"phone": "+14155550123", "time_zone": zone}),
                          headers=auth)
    assert response.status_code == 201, response.get_data(as_text=True)
