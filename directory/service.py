"""The directory's operations, one per change an admin makes, for the admin API, the CLI and the desk alike."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from context.schemas import Strict
from core.extensions import Shared
from core.openapi import API
from core.validation import problems
from directory.models import E164, Agent, AgentConfig, AgentId, Number, NumberConfig
from directory.store import AgentStore, NumberStore

_NUMBER = TypeAdapter(E164)
_AGENT_ID = TypeAdapter(AgentId)


class DirectoryError(Exception):
    """An operation refused: the HTTP status that says so, a code, the field at fault and why, in words."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.details = status, code, message, field, details


def validated(model: type[BaseModel], data: Any) -> Any:
    """data as model, or a DirectoryError (422) naming the first bad field, with every problem in details."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = problems(exc)
        first = details[0]
        raise DirectoryError(422, first["code"], f"{first['field']}: {first['message']}", first["field"],
                             details) from None


def _checked(adapter: TypeAdapter[str], raw: str, field: str) -> str:
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        message = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise DirectoryError(422, "invalid_field", f"{field}: {message}", field) from None


API.path_parameter("number", {**_NUMBER.json_schema(), "description": "the support number, e.g. +14155550100"})
API.path_parameter("agent_id", {**_AGENT_ID.json_schema(), "maxLength": 64})


def checked_number(raw: str, field: str = "number") -> str:
    """The number in E.164, or a 422 naming field."""
    return _checked(_NUMBER, raw, field)


def checked_agent_id(raw: str) -> str:
    """A valid agent id, or a 422 naming the field "agent_id"."""
    return _checked(_AGENT_ID, raw, "agent_id")


# --- Files ---------------------------------------------------------------------------------------------------------

class TextIntLoader(yaml.SafeLoader):
    """Safe YAML that keeps integers as written: +14155550100 and 17:00 stay text, the schemas read counts."""


TextIntLoader.add_constructor("tag:yaml.org,2002:int", lambda loader, node: loader.construct_scalar(node))


class NotFields(ValueError):
    """Text that parses but holds something other than a mapping of field names to values."""


def parse_fields(text: str, as_json: bool = False) -> dict[str, Any]:
    """The mapping in JSON or YAML text (a SafeLoader: no Python objects); ValueError saying what is wrong."""
    try:
        data = json.loads(text) if as_json else yaml.load(text, Loader=TextIntLoader)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValueError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}{where}") from None
    if not isinstance(data, dict):
        raise NotFields("expected a mapping of field names to values")
    return data


def read_file(path: str, field: str) -> dict[str, Any]:
    """The mapping in a JSON (.json) or YAML file; any problem is a 400 naming field and the file."""
    try:
        return parse_fields(Path(path).read_text(encoding="utf-8"), as_json=path.lower().endswith(".json"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        problem = getattr(exc, "strerror", None) or str(exc)
        raise DirectoryError(400, "invalid_file", f"{field}: {path}: {problem}", field) from None


class ConfigFile(Strict):
    """A whole configuration: agents by id and numbers by their E.164 form."""

    agents: dict[AgentId, AgentConfig] = {}
    numbers: dict[str, NumberConfig] = {}


class Applied(BaseModel):
    """What applying a whole configuration wrote."""

    agents: list[Agent]
    numbers: list[Number]


# --- Operations ----------------------------------------------------------------------------------------------------

def _no_number(e164: str) -> DirectoryError:
    return DirectoryError(404, "not_found", f"no support number {e164} is configured", "number")


def _no_agent(agent_id: str) -> DirectoryError:
    return DirectoryError(404, "not_found", f"no agent {agent_id!r}", "agent_id")


class Directory:
    """Support numbers and agents, changed only through these operations; forget_agent clears what a removed
    agent leaves elsewhere (its desk password and sessions), so an agent made again under its id starts afresh."""

    def __init__(self, numbers: NumberStore, agents: AgentStore, forget_agent: Callable[[str], None]) -> None:
        self.numbers, self.agents, self.forget_agent = numbers, agents, forget_agent

    def number(self, e164: str) -> Number:
        """The configured number, or a 404."""
        number = self.numbers.get(e164)
        if number is None:
            raise _no_number(e164)
        return number

    def agent(self, agent_id: str) -> Agent:
        """The agent, or a 404."""
        agent = self.agents.get(agent_id)
        if agent is None:
            raise _no_agent(agent_id)
        return agent

    def check_agents(self, agent_ids: list[str], prefix: str = "", planned: Collection[str] = ()) -> None:
        """Refuse (422) agent ids neither stored nor planned, naming the first as {prefix}agents[i]."""
        stored = self.agents.exists(agent_ids)
        details = [{"code": "unknown_agent", "field": f"{prefix}agents[{i}]", "message": f"unknown agent {agent_id!r}"}
                   for i, (agent_id, known) in enumerate(zip(agent_ids, stored, strict=True))
                   if not known and agent_id not in planned]
        if details:
            first = details[0]
            raise DirectoryError(422, "unknown_agent", f"{first['field']}: {first['message']}", first["field"],
                                 details)

    def check_number(self, config: NumberConfig, prefix: str = "", planned: Collection[str] = ()) -> None:
        """Refuse (422) a number whose agents are neither stored nor planned; fields named under prefix."""
        self.check_agents(config.agents, prefix, planned)

    def set_number(self, e164: str, config: NumberConfig) -> tuple[Number, bool]:
        """Store config for e164 once it passes check_number; True when the number is new."""
        self.check_number(config)
        return self.numbers.put(e164, config, datetime.now(UTC))

    def set_agent(self, agent_id: str, config: AgentConfig) -> tuple[Agent, bool]:
        """Store the agent; True when it is new."""
        return self.agents.put(agent_id, config, datetime.now(UTC))

    def apply(self, config: ConfigFile) -> Applied:
        """Write a whole configuration, agents first; nothing is written unless all of it is valid."""
        numbers: dict[str, NumberConfig] = {}
        for written, number in config.numbers.items():
            e164 = checked_number(written, f"numbers.{written}")
            if e164 in numbers:
                raise DirectoryError(422, "invalid_field", f"numbers.{written}: {e164} is listed twice",
                                     f"numbers.{written}")
            self.check_number(number, prefix=f"numbers.{written}.", planned=config.agents.keys())
            numbers[e164] = number
        agents = [self.set_agent(agent_id, agent)[0] for agent_id, agent in config.agents.items()]
        return Applied(agents=agents, numbers=[self.set_number(e164, number)[0] for e164, number in numbers.items()])

    def remove_number(self, e164: str) -> None:
        """Remove the number's configuration, or a 404."""
        if not self.numbers.delete(e164):
            raise _no_number(e164)

    def remove_agent(self, agent_id: str) -> None:
        """Remove the agent unless a number still lists it (409), or a 404."""
        numbers = self.numbers.using_agent(agent_id)
        if numbers:
            raise DirectoryError(409, "agent_in_use", f"agent {agent_id!r} answers {', '.join(numbers)}; remove it "
                                 "from those numbers first", "agent_id")
        if not self.agents.delete(agent_id):
            raise _no_agent(agent_id)
        self.forget_agent(agent_id)


DIRECTORY: Shared[Directory] = Shared("directory")
