"""schemathesis over the live OpenAPI document: no 5xx, no schema violation, no undocumented status."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig

import app as _app  # noqa: F401  (its import registers every operation in API)
from core.openapi import API
from tests.support.api import AUTH

ADMIN_KEY = "fuzz-admin-key-0123456789"
ADMIN_PATHS = ("/numbers", "/agents")
OPERATIONS = sorted((op.method, op.path) for op in API.operations)
# Rules JSON Schema cannot say (a dialable phone number, a real IANA zone, an http(s) URL, an agent with a phone
# or a client identity) answer 422 to some schema-valid bodies; that is a documented, named refusal, not a fault.
SEMANTIC_422 = {"checks": {"positive_data_acceptance": {
    "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]}}}
load_all_checks()


@pytest.fixture
def fuzz_app(make_app: Any) -> Flask:
    """A test app that opens both the platform API and the admin API."""
    return make_app(THREADLINE_ADMIN_KEYS=[ADMIN_KEY])


def headers_for(path: str) -> dict[str, str]:
    """The admin key for the admin operations, the platform key for the rest."""
    if path.startswith(ADMIN_PATHS):
        return {"Authorization": f"Bearer {ADMIN_KEY}"}
    return dict(AUTH)


def fuzz_operation(app: Flask, method: str, path: str, config: dict[str, Any], checks: list[Any]) -> None:
    """Run schemathesis' generated cases for one operation of the live document against app."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=SchemathesisConfig.from_dict(config))
    operation = schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def fuzz(case: Any) -> None:
        case.call_and_validate(headers=headers_for(path), checks=checks)

    fuzz()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_holds_to_its_document(fuzz_app: Flask, method: str, path: str) -> None:
    fuzz_operation(fuzz_app, method, path, SEMANTIC_422, CHECKS.get_all())

