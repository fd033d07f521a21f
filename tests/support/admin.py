"""An app with a desk admin, an agent and a support number, and sending the admin pages' forms as a browser does."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from directory.models import AgentConfig, Hours, NumberConfig
from tests.support.desk import HTML, sign_in, token_of, with_password

SUPPORT = "+14155550100"
HOSTILE = "<script>alert(1)</script></textarea><img src=x onerror=alert(2)>"
ADMIN_KEY = "admin-key-0123456789"


def admin_desk(make_app: Any, **config: Any) -> Flask:
    """An app with an admin (ada), an agent (sam), both with PASSWORD, and the SUPPORT number configured."""
    app = make_app(SECRET_KEY="test-secret", THREADLINE_ADMIN_KEYS=[ADMIN_KEY], **config)
    now = datetime.now(UTC)
    agents = app.extensions["threadline.agents"]
    agents.put("ada", AgentConfig(name="Ada Admin", phone="+14155550701", role="admin"), now)
    agents.put("sam", AgentConfig(name="Sam Lee", phone="+14155550777"), now)
    app.extensions["threadline.numbers"].put(SUPPORT, NumberConfig(
        label=HOSTILE, brand="Acme", time_zone="America/New_York", agents=["sam"], caller_id="+14155550999",
        business_hours=Hours(mon=[("09:00", "12:00"), ("13:00", "17:00")]), holidays=["2026-12-25"]), now)
    for agent in ("ada", "sam"):
        with_password(app, agent)
    return app


@pytest.fixture
def admin(client: FlaskClient) -> FlaskClient:
    """The test client signed in as ada, the admin (the module's app fixture builds an admin_desk)."""
    assert sign_in(client, agent_id="ada").status_code == 303
    return client


def save(client: FlaskClient, path: str, **form: str) -> TestResponse:
    """Open the form at path, then send it with its token and the fields given."""
    token = token_of(client.get(path, headers=HTML))
    return client.post(path, data={"csrf_token": token, **form}, headers=HTML)


class _Fields(HTMLParser):
    """The fields a browser sends for the page's first form with class admin-form, by name, in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, list[str]] = {}
        self.inside = self.done = False
        self.select: str | None = None
        self.chosen: list[str] = []  # the select's selected option, else its first

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if tag == "form" and "admin-form" in a.get("class", "") and not self.done:
            self.inside = True
        if not self.inside or "disabled" in a:
            return
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "button"):
            if a.get("type") not in ("checkbox", "radio") or "checked" in a:
                self.fields.setdefault(a["name"], []).append(a.get("value", "on"))
        elif tag == "select":
            self.select, self.chosen = a.get("name"), []
        elif tag == "option" and self.select is not None and ("selected" in a or not self.chosen):
            self.chosen = [a.get("value", "")]

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self.select is not None and self.inside:
            self.fields.setdefault(self.select, []).extend(self.chosen[:1])
            self.select = None
        if tag == "form" and self.inside:
            self.inside, self.done = False, True


def fields_of(response: TestResponse) -> dict[str, list[str]]:
    """The admin form's fields in response as a browser would send them unchanged."""
    parser = _Fields()
    parser.feed(response.get_data(as_text=True))
    return parser.fields


def send(client: FlaskClient, path: str, **changes: str | list[str]) -> TestResponse:
    """Open the admin form at path and send it as shown, but for changes (a list: the field's every value)."""
    fields = fields_of(client.get(path, headers=HTML))
    for name, value in changes.items():
        fields[name] = value if isinstance(value, list) else [value]
    return client.post(path, data=MultiDict([(name, value) for name, values in fields.items() for value in values]),
                       headers=HTML)
