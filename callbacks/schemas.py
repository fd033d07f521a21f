"""The callback contract: what the platform asks for and what a callback looks like as it lives."""

from __future__ import annotations

from datetime import date as date_
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from context.schemas import Strict, TimeZone
from directory.models import E164, AgentId


class Mode(StrEnum):
    customer_first = "customer_first"
    agent_first = "agent_first"


class State(StrEnum):
    scheduled = "scheduled"    # waiting for its time (or its next attempt)
    dialing = "dialing"        # an attempt is claimed and its call placed
    in_call = "in_call"        # the customer answered
    completed = "completed"    # the call happened
    canceled = "canceled"      # the customer, an agent or the thread said no more
    exhausted = "exhausted"    # every attempt failed
    failed = "failed"          # cannot be done (invalid number)


LIVE = (State.scheduled, State.dialing, State.in_call)

When = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class CallbackIn(Strict):
    """POST body: when (asap, ISO 8601 or words in the customer's time zone), which support number, and how."""

    when: When = "asap"
    number: E164 = Field(description="the support number the callback is for (its hours, agents and caller ID)")
    mode: Mode = Mode.customer_first
    phone: E164 | None = Field(default=None, description="whom to call; default the thread's customer")
    agent_id: AgentId | None = None


class Reschedule(Strict):
    when: When


class Cancel(Strict):
    reason: Annotated[str, StringConstraints(max_length=200)] = "canceled"


class Adjusted(BaseModel):
    reason: str
    requested: datetime


class Attempt(BaseModel):
    number: int
    claimed_at: datetime
    to: str | None = None  # whom this attempt rings first: the customer, or the agent (agent first)
    agent_id: str | None = None
    call_sid: str | None = None
    answered_by: str | None = None  # what answering-machine detection said when the call was answered
    outcome: str | None = None  # an Outcome of callbacks.outcomes
    ended_at: datetime | None = None


class Callback(BaseModel):
    id: str
    thread_id: str
    state: State
    mode: Mode
    number: str
    phone: str
    callee_zone: str
    agent_id: str | None = None
    scheduled_for: datetime
    customer_local_time: str
    adjusted: Adjusted | None = None
    attempts: list[Attempt] = []
    reason: str | None = None
    created_at: datetime
    updated_at: datetime


class CallbackList(BaseModel):
    callbacks: list[Callback]


class SlotQuery(Strict):
    # The first and last days of the calendar cannot be turned into instants in every zone.
    date: date_ = Field(gt=date_.min, lt=date_.max, description="the day, in the customer's time zone")
    tz: TimeZone | None = Field(default=None, description="the customer's IANA time zone; default the number's")


class Slot(BaseModel):
    start: datetime
    local_time: str


class SlotList(BaseModel):
    time_zone: str
    slots: list[Slot]
