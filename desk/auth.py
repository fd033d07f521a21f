"""Desk sign-in: argon2 passwords, lock-out, server-side desk sessions, CSRF, and `flask agents set-password`."""

from __future__ import annotations

import functools
import hmac
import logging
import math
import secrets
import sys
import threading
import unicodedata
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import click
import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import (
    Blueprint,
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
from pydantic import BaseModel, TypeAdapter, ValidationError

from core import keys
from core.api import ApiError
from core.keys import agent_desk_sessions, agent_password, desk_session, login_attempts, login_lock
from voice import admin_api as admin
from voice.cli import agents_cli, reports
from voice.numbers import AgentId

log = logging.getLogger(__name__)


# --- Passwords and lock-out ----------------------------------------------------------------------------------------

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
MAX_ATTEMPTS = 5  # failed sign-ins within ATTEMPT_WINDOW_SECONDS that lock an agent id
ATTEMPT_WINDOW_SECONDS = 15 * 60
LOCK_SECONDS = 15 * 60

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile: 64 MiB, 3 passes
# Each hash takes 64 MiB for ~0.1 s: cap how many run at once per process, so a burst of sign-ins can't exhaust memory.
_hashing = threading.BoundedSemaphore(2)
_AGENT_ID = TypeAdapter(AgentId)


def _hash_work(work: Callable[..., Any], *args: Any) -> Any:
    """Run argon2 work off the event loop under gevent (a hash blocks a whole gevent worker for ~0.2 s)."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("socket"):
        import gevent  # only reached when gunicorn's gevent workers run the app

        return gevent.get_hub().threadpool.apply(work, args)
    return work(*args)


@functools.cache
def _dummy_hash() -> str:
    """A hash of a random password, verified against when an agent has none, so the time taken is the same."""
    return _hasher.hash(secrets.token_urlsafe(16))


def _normalized(password: str) -> str:
    """NFKC, so the same password typed on different systems is the same string."""
    return unicodedata.normalize("NFKC", password)


def _well_formed(agent_id: str) -> bool:
    try:
        _AGENT_ID.validate_python(agent_id)
    except ValidationError:
        return False
    return True


def _matches(stored: str, password: str) -> bool:
    with _hashing:
        try:
            return _hash_work(_hasher.verify, stored, password)
        except (VerificationError, InvalidHashError):
            return False


class Passwords:
    """Agents' desk passwords as argon2 hashes in Redis, with a lock-out after repeated failures."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self.redis = redis_client

    def set(self, agent_id: str, password: str) -> None:
        """Store the password's hash; clears any lock-out. ValueError when the password is too short or too long."""
        password = _normalized(password)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise ValueError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
        with _hashing:
            hashed = _hash_work(_hasher.hash, password)
        with self.redis.pipeline() as pipe:
            pipe.set(agent_password(agent_id), hashed)
            pipe.delete(login_attempts(agent_id), login_lock(agent_id))
            pipe.execute()

    def has_password(self, agent_id: str) -> bool:
        """Whether the agent has a password set."""
        return bool(self.redis.exists(agent_password(agent_id)))

    def delete(self, agent_id: str) -> None:
        """Forget the agent's password and lock-out state (when the agent is removed)."""
        self.redis.delete(agent_password(agent_id), login_attempts(agent_id), login_lock(agent_id))

    def locked(self, agent_id: str) -> int:
        """Seconds until sign-in for agent_id is allowed again; 0 when it is not locked."""
        if not _well_formed(agent_id):
            return 0
        ttl = self.redis.ttl(login_lock(agent_id))
        return LOCK_SECONDS if ttl == -1 else max(ttl, 0)

    def verify(self, agent_id: str, password: str) -> bool:
        """Whether password is the agent's; always False while locked. Unknown ids cost the same hashing time."""
        if not _well_formed(agent_id):
            _matches(_dummy_hash(), password)  # no such agent can exist: spend the same time anyway
            return False
        if self.locked(agent_id):
            return False
        # Count the attempt before checking it, so parallel guesses can't slip past the limit while hashes run.
        with self.redis.pipeline() as pipe:
            pipe.set(login_attempts(agent_id), 0, ex=ATTEMPT_WINDOW_SECONDS, nx=True)
            pipe.incr(login_attempts(agent_id))
            attempts = pipe.execute()[1]
        if attempts > MAX_ATTEMPTS:
            self._lock(agent_id)
            return False
        stored = self.redis.get(agent_password(agent_id))
        password = _normalized(password)
        if _matches(stored or _dummy_hash(), password) and stored is not None:
            self.redis.delete(login_attempts(agent_id))
            self._rehash_if_needed(agent_id, stored, password)
            return True
        if attempts >= MAX_ATTEMPTS:
            self._lock(agent_id)
        return False

    def _lock(self, agent_id: str) -> None:
        with self.redis.pipeline() as pipe:
            pipe.set(login_lock(agent_id), 1, ex=LOCK_SECONDS, nx=True)
            pipe.delete(login_attempts(agent_id))
            pipe.execute()
        log.warning("desk sign-in locked for agent id %r for %d minutes after %d failed attempts", agent_id,
                    LOCK_SECONDS // 60, MAX_ATTEMPTS)

    def _rehash_if_needed(self, agent_id: str, stored: str, password: str) -> None:
        """Upgrade a hash made with older parameters, unless the password changed meanwhile."""
        if not _hasher.check_needs_rehash(stored):
            return
        with _hashing:
            fresh = _hash_work(_hasher.hash, password)
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(agent_password(agent_id))
                if pipe.get(agent_password(agent_id)) == stored:
                    pipe.multi()
                    pipe.set(agent_password(agent_id), fresh)
                    pipe.execute()
            except redis.WatchError:
                pass


# --- Server-side desk sessions -------------------------------------------------------------------------------------

class DeskSessions:
    """Signed-in desk sessions in Redis: the cookie only names one, so sign-out and password changes end it."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self.redis = redis_client

    def start(self, agent_id: str, lifetime_seconds: int) -> str:
        """A new session id for the agent, valid for lifetime_seconds."""
        session_id = secrets.token_urlsafe(32)
        members = sorted(self.redis.smembers(agent_desk_sessions(agent_id)))
        alive = self.redis.mget([desk_session(m) for m in members]) if members else []
        ended = [m for m, owner in zip(members, alive, strict=True) if owner is None]
        with self.redis.pipeline() as pipe:
            pipe.set(desk_session(session_id), agent_id, ex=lifetime_seconds)
            if ended:
                pipe.srem(agent_desk_sessions(agent_id), *ended)
            pipe.sadd(agent_desk_sessions(agent_id), session_id)
            pipe.expire(agent_desk_sessions(agent_id), lifetime_seconds)
            pipe.execute()
        return session_id

    def agent_of(self, session_id: str) -> str | None:
        """The agent the session belongs to, or None when it ended or expired."""
        return self.redis.get(desk_session(session_id))

    def end(self, session_id: str) -> None:
        """End one session."""
        agent_id = self.redis.get(desk_session(session_id))
        with self.redis.pipeline() as pipe:
            pipe.delete(desk_session(session_id))
            if agent_id:
                pipe.srem(agent_desk_sessions(agent_id), session_id)
            pipe.execute()

    def end_all(self, agent_id: str) -> int:
        """End every session of the agent; how many were live."""
        members = list(self.redis.smembers(agent_desk_sessions(agent_id)))
        if not members:
            return 0
        with self.redis.pipeline() as pipe:
            pipe.delete(*[desk_session(m) for m in members])
            pipe.delete(agent_desk_sessions(agent_id))
            live, _ = pipe.execute()
        return int(live)


def passwords() -> Passwords:
    """The app's Passwords."""
    return Passwords(current_app.extensions["threadline.redis"])


def desk_sessions() -> DeskSessions:
    """The app's DeskSessions."""
    return DeskSessions(current_app.extensions["threadline.redis"])


# --- Cookie settings -----------------------------------------------------------------------------------------------

SESSION_LIFETIME = timedelta(hours=12)


def configure_sessions(app: Flask) -> None:
    """Session cookie flags and the signing key; a random key (with a warning) when THREADLINE_SECRET_KEY is unset."""
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
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secrets.token_urlsafe(32)
        log.warning("THREADLINE_SECRET_KEY is not set: using a random key, so desk sign-ins end when the web process "
                    "restarts and are not shared between instances")


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


bp = Blueprint("desk", __name__, url_prefix="/desk", template_folder="templates", static_folder="static")
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
        redis_client: redis.Redis = current_app.extensions["threadline.redis"]
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
    store = passwords()
    wait = store.locked(agent_id)
    if wait:
        return _locked_form(wait, agent_id, next_url)
    known = _well_formed(agent_id) and admin.agent_store().get(agent_id) is not None
    if not (store.verify(agent_id, password) and known):
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

class PasswordSet(BaseModel):
    """What `agents set-password` did."""

    agent_id: str
    sessions_ended: int


@agents_cli.command("set-password")
@click.argument("agent_id")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of standard input")
@reports
def set_password_command(agent_id: str, password_stdin: bool) -> PasswordSet:
    """Set an agent's desk password (at least 10 characters); ends the agent's desk sessions and any lock-out."""
    checked = admin.checked_agent_id(agent_id)
    if admin.agent_store().get(checked) is None:
        raise ApiError(404, "not_found", f"unknown agent {checked!r}", "agent_id")
    if password_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    try:
        passwords().set(checked, password)
    except ValueError as exc:
        raise ApiError(422, "invalid_field", f"password: {exc}", "password") from None
    return PasswordSet(agent_id=checked, sessions_ended=desk_sessions().end_all(checked))
