"""The Redis stores of support numbers and agents: one JSON record per key, with a set of their ids."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import redis
from pydantic import BaseModel

from core import keys
from core.extensions import Shared
from directory.models import Agent, AgentConfig, Number, NumberConfig

R = TypeVar("R", bound=BaseModel)


def _new_version(pipe: redis.client.Pipeline) -> None:
    """Within a write's transaction: tell every process's DirectoryCache that its copy is stale."""
    pipe.set(keys.DIRECTORY_VERSION, secrets.token_hex(8))


class _JsonStore(Generic[R]):
    """Records kept as JSON strings under one key each, with a set of their ids."""

    model: type[R]

    def __init__(self, redis_client: redis.Redis, key: Any, index: str) -> None:
        self.redis = redis_client
        self.key = key
        self.index = index

    def get(self, record_id: str) -> R | None:
        raw = self.redis.get(self.key(record_id))
        return None if raw is None else self.model.model_validate_json(raw)

    def all(self) -> list[R]:
        ids = sorted(self.redis.smembers(self.index))
        if not ids:
            return []
        return [self.model.model_validate_json(raw) for raw in self.redis.mget([self.key(i) for i in ids]) if raw]

    def _put(self, record_id: str, record: BaseModel) -> bool:
        with self.redis.pipeline() as pipe:
            pipe.set(self.key(record_id), record.model_dump_json())
            pipe.sadd(self.index, record_id)
            _new_version(pipe)
            _, added, _ = pipe.execute()
        return bool(added)

    def delete(self, record_id: str) -> bool:
        with self.redis.pipeline() as pipe:
            pipe.delete(self.key(record_id))
            pipe.srem(self.index, record_id)
            _new_version(pipe)
            deleted, _, _ = pipe.execute()
        return bool(deleted)


class NumberStore(_JsonStore[Number]):
    model = Number

    def __init__(self, redis_client: redis.Redis) -> None:
        super().__init__(redis_client, keys.number, keys.NUMBERS)

    def put(self, e164: str, config: NumberConfig, now: datetime) -> tuple[Number, bool]:
        number = Number(**config.model_dump(), number=e164, updated_at=now)
        return number, self._put(e164, number)

    def using_agent(self, agent_id: str) -> list[str]:
        return [n.number for n in self.all() if agent_id in n.agents]


class AgentStore(_JsonStore[Agent]):
    model = Agent

    def __init__(self, redis_client: redis.Redis) -> None:
        super().__init__(redis_client, keys.agent, keys.AGENTS)

    def many(self, agent_ids: list[str]) -> list[Agent | None]:
        if not agent_ids:
            return []
        raws = self.redis.mget([keys.agent(i) for i in agent_ids])
        return [None if raw is None else Agent.model_validate_json(raw) for raw in raws]

    def put(self, agent_id: str, config: AgentConfig, now: datetime) -> tuple[Agent, bool]:
        agent = Agent(**config.model_dump(), id=agent_id, updated_at=now)
        return agent, self._put(agent_id, agent)

    def exists(self, agent_ids: list[str]) -> list[bool]:
        return [agent is not None for agent in self.many(agent_ids)]


@dataclass(frozen=True)
class Snapshot:
    """Every support number as read under one directory version."""

    version: str | None = None  # None: never read
    numbers: dict[str, Number] = field(default_factory=dict)


class DirectoryCache:
    """The support numbers as this process last read them, for the inbound call's hot path: valid while the
    directory version key holds the token they were read under (the caller checks that in its own round trip)."""

    def __init__(self, numbers: NumberStore) -> None:
        self.numbers = numbers
        self.current = Snapshot()

    def refresh(self) -> Snapshot:
        """Read it all again. The version first: a write landing in between only makes the next check stale."""
        version = self.numbers.redis.get(keys.DIRECTORY_VERSION) or ""
        self.current = Snapshot(version, {n.number: n for n in self.numbers.all()})
        return self.current


NUMBERS: Shared[NumberStore] = Shared("numbers")
AGENTS: Shared[AgentStore] = Shared("agents")
DIRECTORY_CACHE: Shared[DirectoryCache] = Shared("directory_cache")
