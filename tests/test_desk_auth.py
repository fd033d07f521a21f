"""Desk sign-in: argon2 passwords set from the CLI, cookie flags, lock-out, CSRF, sign-out and session fixation."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from core import keys
from desk import auth, passwords
from desk.sessions import DeskSessions
from directory.models import AgentConfig
from tests.support.desk import HTML, PASSWORD, sign_in, token_of, with_password
from tests.support.processes import ROOT


def desk(app: Flask) -> Flask:
    """The app with the desk's sign-in, and a stand-in home page until create_app registers the real desk."""
    if "desk" not in app.blueprints:
        auth.configure_sessions(app)
        app.register_blueprint(auth.bp)
    if "desk.home" not in app.view_functions:
        app.add_url_rule("/desk/", endpoint="desk.home",
                         view_func=auth.login_required(lambda: f"home of {auth.current_agent_id()}"))
    app.add_url_rule("/desk/test-probe", endpoint="test_probe",
                     view_func=auth.login_required(lambda: {"agent": auth.current_agent_id()}))
    return app


def add_agent(app: Flask, agent_id: str = "sam", password: str | None = PASSWORD) -> None:
    app.extensions["threadline.agents"].put(agent_id, AgentConfig(name="Sam Lee", phone="+14155550777"),
                                            datetime.now(UTC))
    if password is not None:
        with_password(app, agent_id, password)


@pytest.fixture
def app(make_app: Any) -> Flask:
    app = desk(make_app(SECRET_KEY="test-secret"))
    add_agent(app)
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def signed_in_as(client: FlaskClient) -> str | None:
    response = client.get("/desk/test-probe", headers={"Accept": "application/json"})
    return response.get_json()["agent"] if response.status_code == 200 else None


def session_cookie(response: TestResponse) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if "threadline=" in c]
    assert len(cookies) == 1, response.headers
    return cookies[0]


# --- flask agents set-password -------------------------------------------------------------------------------------

def test_set_password_stores_only_an_argon2_hash(app: Flask, redis_client: redis.Redis) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["agents", "set-password", "sam", "--password-stdin"], input="another long one\r\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"agent_id": "sam", "sessions_ended": 0}
    stored = redis_client.get(keys.agent_password("sam"))
    assert stored.startswith("$argon2id$") and "another" not in stored
    everything = " ".join(str(redis_client.dump(k)) for k in redis_client.keys("*"))
    assert "another long one" not in everything and PASSWORD not in everything
    assert passwords.Passwords(redis_client).verify("sam", "another long one")  # the \r\n is not part of it


def test_set_password_prompts_twice_without_echo(app: Flask, redis_client: redis.Redis) -> None:
    result = app.test_cli_runner().invoke(args=["agents", "set-password", "sam"],
                                          input="typed at a prompt\ntyped at a prompt\n")
    assert result.exit_code == 0, result.output
    assert "typed at a prompt" not in result.output
    assert passwords.Passwords(redis_client).verify("sam", "typed at a prompt")


def test_a_short_password_is_refused_at_once_and_asked_again(app: Flask, redis_client: redis.Redis) -> None:
    result = app.test_cli_runner().invoke(args=["agents", "set-password", "sam"],
                                          input="short\nlong enough now\nlong enough now\n")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("a password needs at least 10 characters") == 1
    assert result.stderr.count("Repeat for confirmation") == 1  # asked again only for the one it can use
    assert passwords.Passwords(redis_client).verify("sam", "long enough now")


@pytest.mark.parametrize(("args", "stdin", "error"), [
    (["nobody"], PASSWORD, "error: agent_id: unknown agent 'nobody'\n"),
    (["bad id!"], PASSWORD, "error: agent_id: "),
    (["sam"], "too short", "error: password: a password needs at least 10 characters\n"),
    (["sam"], "", "error: password: a password needs at least 10 characters\n"),
])
def test_set_password_refuses(app: Flask, redis_client: redis.Redis, args: list[str], stdin: str, error: str) -> None:
    before = redis_client.get(keys.agent_password("sam"))
    result = app.test_cli_runner().invoke(args=["agents", "set-password", *args, "--password-stdin"],
                                          input=stdin + "\n")
    assert result.exit_code == 1
    assert result.stdout == "" and result.stderr.startswith(error) and result.stderr.count("\n") == 1
    assert redis_client.get(keys.agent_password("sam")) == before
    assert not passwords.Passwords(redis_client).has_password("nobody")


def test_passwords_set_explains_a_short_password(redis_client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="at least 10 characters"):
        passwords.Passwords(redis_client).set("sam", "123456789")


# --- signing in ----------------------------------------------------------------------------------------------------

def test_sign_in_sets_a_protected_session_cookie(client: FlaskClient) -> None:
    response = sign_in(client)
    assert response.status_code == 303 and response.headers["Location"] == "/desk/"
    cookie = session_cookie(response)
    assert cookie.startswith("threadline=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie and "Expires=" in cookie
    assert "Secure" not in cookie  # served over http here
    assert signed_in_as(client) == "sam"
    assert client.get("/desk/", headers=HTML).get_data(as_text=True)  # the home page answers
    again = client.get("/desk/login", headers=HTML)
    assert again.status_code == 303 and again.headers["Location"] == "/desk/"


def test_cookie_is_secure_when_served_over_https(make_app: Any) -> None:
    app = desk(make_app(SECRET_KEY="test-secret", PUBLIC_BASE_URL="https://desk.example.com"))
    add_agent(app)
    client = app.test_client()
    client.environ_base.update({"wsgi.url_scheme": "https", "HTTP_HOST": "desk.example.com"})
    cookie = session_cookie(sign_in(client))
    assert cookie.startswith("__Host-threadline=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Domain" not in cookie


def test_wrong_password_and_unknown_agent_get_the_same_answer(app: Flask, client: FlaskClient) -> None:
    add_agent(app, "alex", password=None)  # exists, no password yet
    answers = [sign_in(client, "sam", "not the password"), sign_in(client, "nobody", PASSWORD),
               sign_in(client, "alex", PASSWORD), sign_in(client, "../bad id", PASSWORD), sign_in(client, "", "")]
    for response in answers:
        assert response.status_code == 401
        body = response.get_data(as_text=True)
        assert "Wrong agent id or password" in body and PASSWORD not in body and "not the password" not in body
        assert response.headers["Cache-Control"] == "no-store"
    assert 'value="nobody"' in answers[1].get_data(as_text=True)  # the id is kept, the password is not
    assert signed_in_as(client) is None


def test_unknown_agents_cost_a_hash_too(app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []
    real = PasswordHasher.verify

    def spy(self: PasswordHasher, stored: str, password: str) -> bool:
        checked.append(stored)
        return real(self, stored, password)

    monkeypatch.setattr(PasswordHasher, "verify", spy)
    sign_in(client, "nobody", PASSWORD)
    sign_in(client, "bad id!", PASSWORD)
    # Both verified a password against the same stand-in argon2 hash, as long as a real one takes.
    assert len(checked) == 2 and checked[0] == checked[1] and checked[0].startswith("$argon2id$")


def test_an_agent_removed_from_the_store_cannot_sign_in(app: Flask, client: FlaskClient) -> None:
    assert sign_in(client).status_code == 303
    app.extensions["threadline.agents"].delete("sam")
    assert signed_in_as(client) is None
    assert sign_in(client).status_code == 401


# --- lock-out ------------------------------------------------------------------------------------------------------

def test_five_failures_lock_the_agent_out_even_with_the_right_password(client: FlaskClient,
                                                                       redis_client: redis.Redis) -> None:
    for _ in range(4):
        assert sign_in(client, password="wrong password").status_code == 401
    fifth = sign_in(client, password="wrong password")
    assert fifth.status_code == 429
    right = sign_in(client)
    assert right.status_code == 429
    assert "Too many attempts: try again in 15 minutes" in right.get_data(as_text=True)
    assert 890 <= int(right.headers["Retry-After"]) <= 900
    assert signed_in_as(client) is None
    assert 890 <= passwords.Passwords(redis_client).locked("sam") <= 900
    assert not passwords.Passwords(redis_client).verify("sam", PASSWORD)

    redis_client.delete(keys.login_lock("sam"))  # the 15 minutes pass
    assert sign_in(client).status_code == 303
    assert signed_in_as(client) == "sam"


def test_one_address_cannot_lock_out_a_second_agent(app: Flask, client: FlaskClient) -> None:
    app.extensions["threadline.agents"].put("lee", AgentConfig(name="Lee", phone="+14155550778"), datetime.now(UTC))
    with_password(app, "lee")
    statuses = [sign_in(client, "sam", "wrong password").status_code for _ in range(5)]
    statuses += [sign_in(client, "lee", "wrong password").status_code for _ in range(6)]
    assert statuses == [401] * 4 + [429] + [401] * 4 + [429, 429]  # sam locked; then the address is stopped
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "10.0.0.2"
    assert sign_in(elsewhere, "lee").status_code == 303  # lee was never locked


def test_unknown_ids_lock_like_known_ones(client: FlaskClient) -> None:
    """Otherwise the sixth answer would tell which ids exist."""
    statuses = [sign_in(client, "nobody", "wrong password").status_code for _ in range(6)]
    assert statuses == [401, 401, 401, 401, 429, 429]


def test_failures_count_within_a_window(client: FlaskClient, redis_client: redis.Redis) -> None:
    sign_in(client, password="wrong password")
    assert 0 < redis_client.ttl(keys.login_attempts("sam")) <= 15 * 60


def test_success_resets_the_count(app: Flask, client: FlaskClient) -> None:
    for _ in range(4):
        assert sign_in(client, password="wrong password").status_code == 401
    assert sign_in(app.test_client()).status_code == 303
    for _ in range(4):
        assert sign_in(client, password="wrong password").status_code == 401
    assert sign_in(client, password="wrong password").status_code == 429


def test_setting_a_password_lifts_the_lock_and_ends_sessions(app: Flask, redis_client: redis.Redis) -> None:
    signed_in, attacker = app.test_client(), app.test_client()
    assert sign_in(signed_in).status_code == 303
    for _ in range(5):
        sign_in(attacker, password="wrong password")
    assert passwords.Passwords(redis_client).locked("sam")
    result = app.test_cli_runner().invoke(args=["agents", "set-password", "sam", "--password-stdin"],
                                          input="a brand new password\n")
    assert json.loads(result.stdout) == {"agent_id": "sam", "sessions_ended": 1}
    assert signed_in_as(signed_in) is None
    assert sign_in(signed_in, password="a brand new password").status_code == 303


def test_old_hashes_are_upgraded_on_sign_in(client: FlaskClient, redis_client: redis.Redis) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    redis_client.set(keys.agent_password("sam"), weak)
    assert sign_in(client).status_code == 303
    upgraded = redis_client.get(keys.agent_password("sam"))
    assert upgraded != weak and "m=65536,t=3,p=4" in upgraded


# --- CSRF, sign-out, fixation --------------------------------------------------------------------------------------

def test_the_login_form_needs_its_token(client: FlaskClient) -> None:
    client.get("/desk/login", headers=HTML)
    for form in ({}, {"csrf_token": "forged"}, {"csrf_token": "é"}):
        response = client.post("/desk/login", data={"agent_id": "sam", "password": PASSWORD, **form}, headers=HTML)
        assert response.status_code == 400
        assert "The form had expired" in response.get_data(as_text=True)
        assert token_of(response)  # a fresh form to try again with
    assert signed_in_as(client) is None


def test_sign_out_needs_the_token_and_ends_the_session_for_good(app: Flask, client: FlaskClient) -> None:
    sign_in(client)
    stolen = client.get_cookie("threadline")
    assert stolen is not None
    refused = client.post("/desk/logout", headers=HTML)
    assert refused.status_code == 400 and "security token" in refused.get_data(as_text=True)
    assert client.post("/desk/logout", data={"csrf_token": "forged"}).status_code == 400
    assert signed_in_as(client) == "sam"

    response = client.post("/desk/logout", headers={"X-CSRF-Token": _token(client)})
    assert response.status_code == 303 and response.headers["Location"] == "/desk/login"
    assert signed_in_as(client) is None
    assert "You have signed out." in client.get("/desk/login", headers=HTML).get_data(as_text=True)

    replay = app.test_client()
    replay.set_cookie("threadline", stolen.value)
    assert signed_in_as(replay) is None  # the cookie names a session that no longer exists


def test_signing_in_starts_a_fresh_session(client: FlaskClient, redis_client: redis.Redis) -> None:
    page = client.get("/desk/login", headers=HTML)
    before = token_of(page)
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
        session["sid"] = "chosen-by-attacker"
    client.post("/desk/login", data={"csrf_token": before, "agent_id": "sam", "password": PASSWORD}, headers=HTML)
    with client.session_transaction() as session:
        assert set(session) - {"_permanent"} == {"agent_id", "sid", "csrf_token"}
        assert session["agent_id"] == "sam" and session["sid"] != "chosen-by-attacker"
        assert session["csrf_token"] != before
        assert session.permanent
        first_sid = session["sid"]
    sessions = DeskSessions(redis_client)
    assert sessions.agent_of(first_sid) == "sam"
    assert 0 < redis_client.ttl(keys.desk_session(first_sid)) <= 12 * 3600
    again = {"csrf_token": _token(client), "agent_id": "sam", "password": PASSWORD}  # the form, posted twice
    assert client.post("/desk/login", data=again, headers=HTML).status_code == 303
    with client.session_transaction() as session:
        assert session["sid"] != first_sid
    assert sessions.agent_of(first_sid) is None  # signing in again ends the old session


def test_a_session_for_one_agent_cannot_be_relabelled(app: Flask, client: FlaskClient) -> None:
    add_agent(app, "alex")
    sign_in(client)
    with client.session_transaction() as session:
        session["agent_id"] = "alex"  # only possible with the secret key, and still refused
    assert signed_in_as(client) is None


# --- login_required and next ---------------------------------------------------------------------------------------

def test_pages_redirect_to_the_form_and_scripts_get_401(client: FlaskClient) -> None:
    page = client.get("/desk/test-probe?a=1", headers=HTML)
    assert page.status_code == 303
    assert page.headers["Location"] == "/desk/login?next=/desk/test-probe?a%3D1"
    for headers in ({"Accept": "application/json"}, {"Accept": "text/event-stream"}, {},
                    {**HTML, "Sec-Fetch-Mode": "cors"}):
        response = client.get("/desk/test-probe", headers=headers)
        assert response.status_code == 401, headers
        assert response.get_json()["error"]["code"] == "unauthorized"


def test_next_is_followed_only_within_the_desk(client: FlaskClient) -> None:
    assert sign_in(client, next="/desk/threads/t-1").headers["Location"] == "/desk/threads/t-1"
    for unsafe in ("//evil.example/desk/", "https://evil.example/desk/", "/desk/\\evil", "/admin", "/desk/\r\nx"):
        client.post("/desk/logout", headers={"X-CSRF-Token": _token(client)})
        assert sign_in(client, next=unsafe).headers["Location"] == "/desk/", unsafe


def _token(client: FlaskClient) -> str:
    with client.session_transaction() as session:
        return session.get("csrf_token", "")


def test_login_page_is_accessible_and_has_no_inline_code(client: FlaskClient) -> None:
    body = client.get("/desk/login?next=/desk/threads/t-9", headers=HTML).get_data(as_text=True)
    assert '<label for="agent_id">' in body and '<label for="password">' in body
    assert 'autocomplete="username"' in body and 'autocomplete="current-password"' in body and "autofocus" in body
    assert 'name="next" value="/desk/threads/t-9"' in body
    assert "<style" not in body and " style=" not in body and "onclick" not in body
    assert re.findall(r"<script(?![^>]*\bsrc=)", body) == []


UNDER_GEVENT = """
from gevent import monkey
monkey.patch_all()  # as gunicorn's gevent workers run the desk
import sys, tempfile
from core.redis_server import EmbeddedRedis, connect
from desk.passwords import Passwords
server = EmbeddedRedis(tempfile.mkdtemp(), appendonly=False)
store = Passwords(connect(server.start()))
store.set("sam", "correct horse battery")
print(store.verify("sam", "not the password"), store.verify("sam", "correct horse battery"))
server.stop()
"""


def test_a_failed_sign_in_under_gevent_prints_no_traceback() -> None:
    done = subprocess.run([sys.executable, "-c", UNDER_GEVENT], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
    assert "Traceback" not in done.stderr and "VerifyMismatchError" not in done.stderr, done.stderr
