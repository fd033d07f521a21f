"""Signing in to the desk the way a browser does: the form, its token, the password."""

from __future__ import annotations

import re

import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

PASSWORD = "correct horse battery"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def with_password(app: Flask, agent_id: str = "sam", password: str = PASSWORD) -> None:
    """Give the agent a desk password the way an admin does: `flask agents set-password` with it on stdin."""
    result = app.test_cli_runner().invoke(args=["agents", "set-password", agent_id, "--password-stdin"],
                                          input=password + "\n")
    assert result.exit_code == 0, result.output


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


def sign_in_over_http(base: str, agent_id: str = "sam", password: str = PASSWORD) -> requests.Session:
    """A session signed in through the form of a served app, as a browser does."""
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment between us and the app
    page = session.get(f"{base}/desk/login", headers=HTML, timeout=30)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    form = {"csrf_token": match.group(1), "agent_id": agent_id, "password": password}
    answer = session.post(f"{base}/desk/login", data=form, headers=HTML, allow_redirects=False, timeout=30)
    assert answer.status_code == 303, answer.text
    return session


class EventStream:
    """A desk's open GET /desk/events over HTTP, read a frame at a time (a read waiting 20 s fails)."""

    def __init__(self, session: requests.Session, base: str) -> None:
        self.response = session.get(f"{base}/desk/events", headers={"Accept": "text/event-stream"}, stream=True,
                                    timeout=20)
        assert self.response.status_code == 200, self.response.text
        self.lines = self.response.iter_lines(chunk_size=None, decode_unicode=True)

    def frame(self) -> str | None:
        """The next frame's lines, joined; None when the server ended the stream."""
        lines = []
        for line in self.lines:
            if not line:
                return "\n".join(lines)
            lines.append(line)
        return None

    def close(self) -> None:
        self.response.close()
