"""desk/words.py on every desk page: the agent's time zone in each template's context, and the words as Jinja
filters, so no template formats a time or names a code by itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context

from desk import bp, words
from desk.access import numbers_of
from desk.auth import current_agent_id
from directory.models import Agent
from directory.store import AGENTS, NUMBERS

DEFAULT_ZONE = "UTC"


def agent_zone(agent: Agent | None) -> str:
    """The agent's time zone: their own (time_zone on the agent), else their first number's, else UTC."""
    if agent is None:
        return DEFAULT_ZONE
    if agent.time_zone:
        return agent.time_zone
    mine = sorted(numbers_of(agent.id))
    number = NUMBERS.get().get(mine[0]) if mine else None
    return number.time_zone if number else DEFAULT_ZONE


@bp.context_processor
def _zone() -> dict[str, Any]:
    """Every desk template knows the signed-in agent's zone and the moment it is rendered."""
    agent_id = current_agent_id()
    return {"zone": agent_zone(AGENTS.get().get(agent_id) if agent_id else None), "now": datetime.now(UTC)}


@pass_context
def _when(context: Context, moment: datetime | None, zone: str | None = None) -> str:
    """Today 3:02 PM in the agent's zone (or zone, such as the customer's)."""
    return words.day_and_time(moment, zone or context["zone"], context["now"]) if moment else ""


@pass_context
def _clock(context: Context, moment: datetime | None, zone: str | None = None) -> str:
    return words.clock(moment, zone or context["zone"]) if moment else ""


_PLAIN = {
    "callback_mode": words.callback_mode, "label": words.label, "phone": words.phone, "author": words.author,
    "zone_name": words.zone_name, "minutes_late": words.minutes_late,
    "agent_status": lambda value: words.AGENT_STATUS.get(value, value),
    "role": lambda value: words.ROLE.get(value, value), "log_level": lambda value: words.LOG_LEVEL.get(value, value),
}
for _name, _filter in {**_PLAIN, "when": _when, "clock": _clock}.items():
    bp.add_app_template_filter(_filter, _name)
