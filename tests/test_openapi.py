"""The OpenAPI document is generated from the validating models and matches what the API does."""

from __future__ import annotations

import re

import jsonschema
import pytest

from tests.support.api import thread_body


@pytest.fixture
def doc(client):
    response = client.get("/api/v1/openapi.json")  # public: no key needed
    assert response.status_code == 200
    return response.get_json()


def schema_for(doc: dict, ref: dict) -> jsonschema.protocols.Validator:
    schema = {**ref, "components": doc["components"]}
    return jsonschema.Draft202012Validator(schema)


def test_every_api_route_is_documented(app, doc):
    assert doc["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.endpoint == "api_docs.openapi_json":
            continue
        path = re.sub(r"<([^>]+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (method, path) in documented, f"{method} {path} is not in the OpenAPI document"
    assert len(documented) >= 5


def test_the_documented_request_schema_is_the_one_that_validates(doc, client, auth):
    put = doc["paths"]["/threads/{thread_id}"]["put"]
    validator = schema_for(doc, put["requestBody"]["content"]["application/json"]["schema"])
    good = thread_body()
    assert validator.is_valid(good)
    bad = thread_body(colour="red")
    assert not validator.is_valid(bad)
    assert client.put("/api/v1/threads/t-1", json=bad, headers=auth).status_code == 422
    assert put["security"] == [{"bearer": []}]


def test_responses_match_their_documented_schemas(doc, client, auth):
    created = client.put("/api/v1/threads/t-1", json=thread_body(), headers=auth)
    documented = doc["paths"]["/threads/{thread_id}"]["put"]["responses"]["201"]
    schema_for(doc, documented["content"]["application/json"]["schema"]).validate(created.get_json())

    listed = client.get("/api/v1/threads?phone=%2B14155550123", headers=auth)
    documented = doc["paths"]["/threads"]["get"]["responses"]["200"]
    schema_for(doc, documented["content"]["application/json"]["schema"]).validate(listed.get_json())

    error = client.get("/api/v1/threads/missing", headers=auth)
    documented = doc["paths"]["/threads/{thread_id}"]["get"]["responses"]["401"]
    schema_for(doc, documented["content"]["application/json"]["schema"]).validate(error.get_json())
    query = {p["name"]: p for p in doc["paths"]["/threads"]["get"]["parameters"]}
    assert query["phone"]["required"] and not query["limit"]["required"]


def test_the_document_states_the_shapes_the_server_enforces(doc, client, auth):
    """What a JSON Schema can say, it says: an API user learns the rule from the document, not from a 422."""
    agent_param = doc["paths"]["/agents/{agent_id}"]["put"]["parameters"][0]["schema"]
    assert re.search(agent_param["pattern"], "sam.lee-2") and not re.search(agent_param["pattern"], "sam:x")
    assert agent_param["maxLength"] == 64
    assert doc["paths"]["/numbers/{number}"]["get"]["parameters"][0]["schema"]["maxLength"] == 40
    url = doc["components"]["schemas"]["Attachment"]["properties"]["url"]
    attachment = {"name": "log.txt", "url": "ftp://files.example.com/log.txt"}
    assert not re.search(url["pattern"], attachment["url"]) and re.search(url["pattern"], "HTTPS://a.example/x")
    body = thread_body()
    body["messages"][0]["attachments"] = [attachment]
    refused = client.put("/api/v1/threads/t-1", json=body, headers=auth)
    assert refused.status_code == 422 and refused.get_json()["error"]["field"] == "messages[0].attachments[0].url"
