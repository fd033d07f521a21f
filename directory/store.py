"""The Redis stores of support numbers and agents: one JSON record per key, with a set of their ids."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import redis
from pydantic import BaseModel

from core import keys
from core.extensions import Shared
from directory.models import Agent, AgentConfig, Number, NumberConfig


class _JsonStore:
    """Records kept as JSON strings under one key each, with a set of their ids."""

    model: type[BaseModel]

    def __init__(self, redis_client: redis.Redis, key: Any, index: str) -> None:
        self.redis = redis_client
        self.key = key
        self.index = index

    def _get(self, record_id: str) -> Any:
        raw = self.redis.get(self.key(record_id))
        return None if raw is None else self.model.model_validate_json(raw)

    def _list(self) -> list[Any]:
        ids = sorted(self.redis.smembers(self.index))
        if not ids:
            return []
        return [self.model.model_validate_json(raw) for raw in self.redis.mget([self.key(i) for i in ids]) if raw]

    def _put(self, record_id: str, record: BaseModel) -> bool:
        with self.redis.pipeline() as pipe:
            pipe.set(self.key(record_id), record.model_dump_json())
            pipe.sadd(self.index, record_id)
            _, added = pipe.execute()
        return bool(added)

    def _delete(self, record_id: str) -> bool:
        with self.redis.pipeline() as pipe:
            pipe.delete(self.key(record_id))
            pipe.srem(self.index, record_id)
            deleted, _ = pipe.execute()
        return bool(deleted)


class NumberStore(_JsonStore):
    model = Number

    def __init__(self, redis_client: redis.Redis) -> None:
        super().__init__(redis_client, keys.number, keys.NUMBERS)

    def get(self, e164: str) -> Number | None:
        return self._get(e164)

    def all(self) -> list[Number]:
        return self._list()

    def put(self, e164: str, config: NumberConfig, now: datetime) -> tuple[Number, bool]:
        number = Number(**config.model_dump(), number=e164, updated_at=now)
        return number, self._put(e164, number)

    def delete(self, e164: str) -> bool:
        return self._delete(e164)

    def using_agent(self, agent_id: str) -> list[str]:
        return [n.number for n in self.all() if agent_id in n.agents]


class AgentStore(_JsonStore):
    model = Agent

    def __init__(self, redis_client: redis.Redis) -> None:
        super().__init__(redis_client, keys.agent, keys.AGENTS)

    def get(self, agent_id: str) -> Agent | None:
        return self._get(agent_id)

    def all(self) -> list[Agent]:
        return self._list()

    def many(self, agent_ids: list[str]) -> list[Agent | None]:
        if not agent_ids:
            return []
        raws = self.redis.mget([keys.agent(i) for i in agent_ids])
        return [None if raw is None else Agent.model_validate_json(raw) for raw in raws]

    def put(self, agent_id: str, config: AgentConfig, now: datetime) -> tuple[Agent, bool]:
        agent = Agent(**config.model_dump(), id=agent_id, updated_at=now)
        return agent, self._put(agent_id, agent)

    def delete(self, agent_id: str) -> bool:
        return self._delete(agent_id)

    def exists(self, agent_ids: list[str]) -> list[bool]:
        return [agent is not None for agent in self.many(agent_ids)]


NUMBERS: Shared[NumberStore] = Shared("numbers")
AGENTS: Shared[AgentStore] = Shared("agents")
