"""Twilio's OpenAPI document for the 2010-04-01 API (tests/twilio-oai), as JSON Schema, and the checks that hold
the carrier's REST answers to it: each success against the schema of its path, method and status, each error
against Twilio's error shape."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import requests

OAI = Path(__file__).resolve().parents[1] / "twilio-oai" / "twilio_api_v2010.json"
PREFIX = "/2010-04-01/Accounts/{AccountSid}/"
ERROR_FIELDS = ("code", "message", "more_info", "status")


def _json_schema(node: Any, strict: bool) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: `nullable` becomes an explicit null; strict: an object has only the
    properties the document lists (a field the document does not know is a shape Twilio does not send)."""
    if isinstance(node, list):
        return [_json_schema(item, strict) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {k: _json_schema(v, strict) for k, v in node.items() if k not in ("nullable", "x-twilio", "examples")}
    if strict and converted.get("type") == "object" and isinstance(node.get("properties"), dict):
        converted["additionalProperties"] = False
    if node.get("nullable"):
        if "$ref" in converted:
            return {"anyOf": [{"$ref": converted.pop("$ref")}, {"type": "null"}]}
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
    return converted


@cache
def document(strict: bool = False) -> dict[str, Any]:
    return _json_schema(json.loads(OAI.read_text()), strict)


def shape(path: str) -> str:
    """A path with every parameter blanked, so a Flask rule and a document path compare: Calls/{}/Recordings.json."""
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def documented(path: str) -> str | None:
    """The document's path (under the account) of the same shape as `path`, if it has one."""
    return next((p.removeprefix(PREFIX) for p in document()["paths"] if shape(p) == shape(PREFIX + path)), None)


def error_schema() -> dict[str, Any]:
    """Twilio's error shape as its document states it (the one response that spells it out), every field required."""
    for operations in document(strict=True)["paths"].values():
        for operation in operations.values():
            for response in (operation.get("responses") or {}).values() if isinstance(operation, dict) else ():
                schema = (response.get("content") or {}).get("application/json", {}).get("schema", {})
                if set(schema.get("properties", {})) == set(ERROR_FIELDS):
                    return {**schema, "required": list(ERROR_FIELDS)}
    raise AssertionError("the document states no error shape")


def conforms(response: requests.Response, path: str, method: str) -> Any:
    """Validate a carrier answer: a success against the document's schema for its path, method and status (strict),
    a 204 as empty, an error against Twilio's error shape with the answer's own status. Returns the body."""
    if response.status_code >= 400:
        body = response.json()
        jsonschema.Draft202012Validator(error_schema()).validate(body)
        assert body["status"] == response.status_code and body["more_info"].endswith(str(body["code"]))
        return body
    strict = document(strict=True)
    at = documented(path)
    assert at is not None, f"{path} is not in Twilio's document"
    responses = strict["paths"][PREFIX + at][method.lower()]["responses"]
    assert str(response.status_code) in responses, f"{method} {path} answered {response.status_code}"
    if response.status_code == 204:
        assert response.content == b""
        return None
    schema = responses[str(response.status_code)]["content"]["application/json"]["schema"]
    body = response.json()
    jsonschema.Draft202012Validator({**schema, "components": strict["components"]}).validate(body)
    return body
