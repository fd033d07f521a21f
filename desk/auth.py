"""Desk sign-in: argon2 passwords, lock-out, server-side desk sessions, CSRF, and `flask agents set-password`."""

from __future__ import annotations

import functools
import hmac
import logging
import math
import secrets
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import click
import redis
from flask import (
    Flask,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from core import keys
from core.extensions import REDIS
from core.forwarding import client_address
from core.keys import desk_session
from desk import bp
from desk.passwords import Passwords, PasswordSet, acceptable, known_agent, set_password, well_formed
from desk.sessions import DeskSessions
from directory.service import DIRECTORY
from voice.cli import agents_cli, reports

log = logging.getLogger(__name__)


def passwords() -> Passwords:
    """The app's Passwords."""
    return Passwords(REDIS.get())


def desk_sessions() -> DeskSessions:
    """The app's DeskSessions."""
    return DeskSessions(REDIS.get())


# --- Cookie settings -----------------------------------------------------------------------------------------------

SESSION_LIFETIME = timedelta(hours=12)


def configure_sessions(app: Flask) -> None:
    """Session cookie flags and the signing key; a random key when THREADLINE_SECRET_KEY is unset."""
    https = str(app.config.get("PUBLIC_BASE_URL") or "").lower().startswith("https://")
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
        # __Host-: the browser keeps it only if Secure, host-only and Path=/, so no subdomain can plant one.
        SESSION_COOKIE_NAME="__Host-threadline" if https else "threadline",
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_DOMAIN=None,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    if not app.config.get("SECRET_KEY"):  # the web server says so once (core.config.web_warnings)
        app.config["SECRET_KEY"] = secrets.token_urlsafe(32)


# --- CSRF ----------------------------------------------------------------------------------------------------------

_CSRF_SESSION_KEY = "csrf_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token() -> str:
    """The session's CSRF token, created on first use."""
    token = session.get(_CSRF_SESSION_KEY)
    if not token:
        token = session[_CSRF_SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def _csrf_ok() -> bool:
    expected = session.get(_CSRF_SESSION_KEY) or ""
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    return bool(expected and sent) and hmac.compare_digest(sent.encode(), expected.encode())


def check_csrf() -> None:
    """Abort with 400 unless the request carries the session's CSRF token (form field csrf_token or X-CSRF-Token)."""
    if not _csrf_ok():
        abort(400, "The form's security token is missing or out of date: reload the page and try again.")


bp.context_processor(lambda: {"csrf_token": csrf_token})


@bp.before_request
def _csrf_on_every_change() -> None:
    """Every state-changing desk request carries the token; the login form checks its own, to answer with the form."""
    if request.method not in _SAFE_METHODS and request.endpoint != "desk.login":
        check_csrf()


# --- Who is signed in ----------------------------------------------------------------------------------------------

View = TypeVar("View", bound=Callable[..., Any])


def current_agent_id() -> str | None:
    """The signed-in agent's id: the session is live in Redis and the agent still exists; else None."""
    if "desk_agent_id" in g:
        return g.desk_agent_id
    agent_id, session_id = session.get("agent_id"), session.get("sid")
    found = None
    if isinstance(agent_id, str) and isinstance(session_id, str):
        redis_client: redis.Redis = REDIS.get()
        owner, agent = redis_client.mget([desk_session(session_id), keys.agent(agent_id)])
        if owner == agent_id and agent is not None:
            found = agent_id
    g.desk_agent_id = found
    return found


def _wants_page() -> bool:
    """A browser navigating (redirect it to the form), not a script: fetch, EventSource or a JSON client (401)."""
    mode = request.headers.get("Sec-Fetch-Mode")
    if mode and mode != "navigate":
        return False
    best = request.accept_mimetypes.best_match(["text/html", "application/json", "text/event-stream"])
    return best == "text/html" and not request.is_json


def login_required(view: View) -> View:
    """Refuse a view to anyone not signed in: the login page for a browser, 401 for scripts and streams."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if current_agent_id() is not None:
            return view(*args, **kwargs)
        if _wants_page():
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("desk.login", next=_safe_next(target)), 303)
        response = jsonify({"error": {"code": "unauthorized", "message": "sign in to the desk first"}})
        response.status_code = 401
        return response

    return cast(View, guarded)


def _safe_next(target: str | None) -> str | None:
    """target when it is a path on the desk (no scheme, host or backslash tricks), else None."""
    if not target or not target.startswith("/desk/") or "\\" in target or not target.isprintable():
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


# --- Routes --------------------------------------------------------------------------------------------------------

WRONG = "Wrong agent id or password"


def _login_form(status: int = 200, error: str | None = None, agent_id: str = "", next_url: str | None = None,
                retry_after: int | None = None) -> Any:
    response = current_app.make_response(
        (render_template("desk/login.html", error=error, agent_id=agent_id, next_url=next_url), status))
    response.headers["Cache-Control"] = "no-store"
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _locked_form(seconds: int, agent_id: str, next_url: str | None) -> Any:
    minutes = max(1, math.ceil(seconds / 60))
    message = f"Too many attempts: try again in {minutes} minute{'' if minutes == 1 else 's'}"
    return _login_form(429, message, agent_id, next_url, retry_after=seconds)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The sign-in form; a right agent id and password start a fresh session."""
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_agent_id() is not None:
            return redirect(next_url or url_for("desk.home"), 303)
        return _login_form(next_url=next_url)
    agent_id = request.form.get("agent_id", "").strip()
    password = request.form.get("password", "")
    if not _csrf_ok():
        return _login_form(400, "The form had expired: please sign in again.", agent_id, next_url)
    store, address = passwords(), client_address()
    wait = store.address_blocked(address) or store.locked(agent_id)
    if wait:
        return _locked_form(wait, agent_id, next_url)
    known = well_formed(agent_id) and DIRECTORY.get().agents.get(agent_id) is not None
    if not (store.verify(agent_id, password) and known):
        store.failed_from(address)
        log.info("desk sign-in refused for agent id %r from %s", agent_id[:64], address)
        wait = store.locked(agent_id)
        if wait:
            return _locked_form(wait, agent_id, next_url)
        return _login_form(401, WRONG, agent_id, next_url)
    sessions = desk_sessions()
    if isinstance(session.get("sid"), str):
        sessions.end(session["sid"])
    session.clear()  # nothing from before sign-in survives: no session fixation
    lifetime = int(current_app.permanent_session_lifetime.total_seconds())
    session["agent_id"] = agent_id
    session["sid"] = sessions.start(agent_id, lifetime)
    session[_CSRF_SESSION_KEY] = secrets.token_urlsafe(32)
    session.permanent = True
    g.pop("desk_agent_id", None)
    log.info("desk sign-in: agent %s", agent_id)
    return redirect(next_url or url_for("desk.home"), 303)


@bp.post("/logout")
def logout() -> Any:
    """End the session (CSRF-checked by the blueprint) and go back to the sign-in form."""
    if isinstance(session.get("sid"), str):
        desk_sessions().end(session["sid"])
    session.clear()
    g.pop("desk_agent_id", None)
    flash("You have signed out.")
    return redirect(url_for("desk.login"), 303)


# --- `flask agents set-password` -----------------------------------------------------------------------------------

def _acceptable_at_prompt(password: str) -> str:
    try:
        acceptable(password)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return password


@agents_cli.command("set-password")
@click.argument("agent_id")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of standard input")
@reports
def set_password_command(agent_id: str, password_stdin: bool) -> PasswordSet:
    """Set an agent's desk password (at least 10 characters); ends the agent's desk sessions and any lock-out."""
    checked = known_agent(DIRECTORY.get().agents, agent_id)  # before asking for a password it can't take
    if password_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    else:
        # Checked as typed, so a password that can't be used is refused before it is asked for again.
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True,
                                value_proc=_acceptable_at_prompt)
    return set_password(DIRECTORY.get().agents, passwords(), desk_sessions(), checked, password)
