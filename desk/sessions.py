"""Signed-in desk sessions kept in Redis: the cookie only names one."""

from __future__ import annotations

import secrets

import redis

from core.keys import agent_desk_sessions, desk_session


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

    def agents_of(self, session_ids: list[str]) -> list[str | None]:
        """agent_of for many sessions in one round trip, in order."""
        return self.redis.mget([desk_session(s) for s in session_ids]) if session_ids else []

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
