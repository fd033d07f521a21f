"""Signing in to the desk the way a browser does: the form, its token, the password."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

PASSWORD = "correct horse battery"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def token_of(response: TestResponse) -> str:
    """The CSRF token of the form in a page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)
    return match.group(1)


def sign_in(client: FlaskClient, agent_id: str = "sam", password: str = PASSWORD, **form: str) -> TestResponse:
    """Open the form, then send it with its token."""
    token = token_of(client.get("/desk/login", headers=HTML))
    return client.post("/desk/login", data={"csrf_token": token, "agent_id": agent_id, "password": password, **form},
                       headers=HTML)
