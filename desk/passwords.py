"""Agents' desk passwords: argon2 hashes in Redis, the lock-out after repeated failures, and setting one."""

from __future__ import annotations

import functools
import logging
import secrets
import sys
import threading
import unicodedata
from collections.abc import Callable
from typing import Any

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, TypeAdapter, ValidationError

from core.keys import agent_password, login_address_failures, login_attempts, login_lock
from desk.sessions import DeskSessions
from directory.models import AgentId
from directory.service import DirectoryError, checked_agent_id
from directory.store import AgentStore

log = logging.getLogger(__name__)


MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
MAX_ATTEMPTS = 5  # failed sign-ins within ATTEMPT_WINDOW_SECONDS that lock an agent id
ATTEMPT_WINDOW_SECONDS = 15 * 60
LOCK_SECONDS = 15 * 60
# Failed sign-ins one client address gets per window, whatever the ids: enough to lock at most one agent id.
ADDRESS_MAX_FAILURES = 2 * MAX_ATTEMPTS - 1

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


def well_formed(agent_id: str) -> bool:
    try:
        _AGENT_ID.validate_python(agent_id)
    except ValidationError:
        return False
    return True


def _verify(stored: str, password: str) -> bool:
    # A mismatch is an answer, not an error: raised inside gevent's thread pool it would print a traceback.
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _matches(stored: str, password: str) -> bool:
    with _hashing:
        return _hash_work(_verify, stored, password)


def acceptable(password: str) -> str:
    """The password as it will be stored; ValueError saying why when it is too short or too long."""
    password = _normalized(password)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    return password


class Passwords:
    """Agents' desk passwords as argon2 hashes in Redis, with a lock-out after repeated failures."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self.redis = redis_client

    def set(self, agent_id: str, password: str) -> None:
        """Store the password's hash; clears any lock-out. ValueError when the password is too short or too long."""
        password = acceptable(password)
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

    def address_blocked(self, address: str) -> int:
        """Seconds until this client address may try to sign in again; 0 when it may now. One address can lock out
        at most one agent id, not every agent."""
        key = login_address_failures(address)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.ttl(key)
            failures, ttl = pipe.execute()
        return max(ttl, 1) if int(failures or 0) >= ADDRESS_MAX_FAILURES else 0

    def failed_from(self, address: str) -> None:
        """Count a failed sign-in against the client address."""
        key = login_address_failures(address)
        with self.redis.pipeline() as pipe:
            pipe.set(key, 0, ex=ATTEMPT_WINDOW_SECONDS, nx=True)
            pipe.incr(key)
            pipe.execute()

    def locked(self, agent_id: str) -> int:
        """Seconds until sign-in for agent_id is allowed again; 0 when it is not locked."""
        if not well_formed(agent_id):
            return 0
        ttl = self.redis.ttl(login_lock(agent_id))
        return LOCK_SECONDS if ttl == -1 else max(ttl, 0)

    def verify(self, agent_id: str, password: str) -> bool:
        """Whether password is the agent's; always False while locked. Unknown ids cost the same hashing time."""
        if not well_formed(agent_id):
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


class PasswordSet(BaseModel):
    """What setting a password did."""

    agent_id: str
    sessions_ended: int


def known_agent(agents: AgentStore, agent_id: str) -> str:
    """The agent id when it is valid and the agent exists, else a DirectoryError naming agent_id."""
    checked = checked_agent_id(agent_id)
    if agents.get(checked) is None:
        raise DirectoryError(404, "not_found", f"unknown agent {checked!r}", "agent_id")
    return checked


def set_password(agents: AgentStore, passwords: Passwords, sessions: DeskSessions, agent_id: str,
                 password: str) -> PasswordSet:
    """Set an existing agent's desk password, ending its desk sessions and any lock-out; DirectoryError when not."""
    checked = known_agent(agents, agent_id)
    try:
        passwords.set(checked, password)
    except ValueError as exc:
        raise DirectoryError(422, "invalid_field", f"password: {exc}", "password") from None
    return PasswordSet(agent_id=checked, sessions_ended=sessions.end_all(checked))


def forget_agent(redis_client: redis.Redis, agent_id: str) -> None:
    """Forget a removed agent's password, lock-out and desk sessions, so one made again under its id starts afresh."""
    Passwords(redis_client).delete(agent_id)
    DeskSessions(redis_client).end_all(agent_id)
