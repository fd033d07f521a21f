"""Support numbers and agents as telephony admins configure them: their schemas and validation."""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from itertools import pairwise
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from context.phones import to_e164
from context.schemas import Brand, Strict, TimeZone

# Say languages a number may use, in words, and the Polly voices that speak each (the first unless one is chosen).
LANGUAGE_NAMES = {
    "en-US": "English (United States)", "en-GB": "English (United Kingdom)", "en-AU": "English (Australia)",
    "en-IN": "English (India)", "es-US": "Spanish (United States)", "es-ES": "Spanish (Spain)",
    "es-MX": "Spanish (Mexico)", "fr-FR": "French (France)", "fr-CA": "French (Canada)",
}
SPEAKERS = {
    "en-US": ("Joanna", "Salli", "Kendra", "Kimberly", "Ivy", "Matthew", "Justin", "Joey"),
    "en-GB": ("Amy", "Emma", "Brian"), "en-AU": ("Nicole", "Russell"), "en-IN": ("Aditi", "Raveena"),
    "es-US": ("Lupe", "Penelope", "Miguel"), "es-ES": ("Lucia", "Conchita", "Enrique"), "es-MX": ("Mia",),
    "fr-FR": ("Celine", "Lea", "Mathieu"), "fr-CA": ("Chantal",),
}
VOICE_CHOICES = {language: tuple(f"Polly.{name}" for name in names) for language, names in SPEAKERS.items()}
LANGUAGES = frozenset(VOICE_CHOICES)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$"
_COUNTRY = r"^[A-Z]{2}$"


def _time_of_day(value: str) -> str:
    if not re.match(_HHMM, value):
        raise ValueError("write a time as hours:minutes from 00:00 to 24:00, such as 09:30"
                         + (f", not {value!r}" if value else ""))
    return value


def _country(value: str) -> str:
    if not re.match(_COUNTRY, value):
        raise ValueError(f"{value!r} is not a country's two capital letters, such as US or GB")
    return value


HHMM = Annotated[str, AfterValidator(_time_of_day), Field(json_schema_extra={"pattern": _HHMM})]
Country = Annotated[str, AfterValidator(_country), Field(json_schema_extra={"pattern": _COUNTRY})]
_AGENT_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_IDENTITY = r"^[A-Za-z0-9_.-]{1,64}$"


def _agent_id(value: str) -> str:
    if not re.match(_AGENT_ID, value):
        raise ValueError(f"an agent id is 1 to 64 letters, digits, dots, dashes or underscores, starting with a "
                         f"letter or digit, not {value!r}")
    return value


def _identity(value: str) -> str:
    if not re.match(_IDENTITY, value):
        raise ValueError(f"a browser identity is 1 to 64 letters, digits, dots, dashes or underscores, not {value!r}")
    return value


AgentId = Annotated[str, AfterValidator(_agent_id), Field(json_schema_extra={"pattern": _AGENT_ID})]
Identity = Annotated[str, AfterValidator(_identity), Field(json_schema_extra={"pattern": _IDENTITY})]


def default_voice(language: str) -> str:
    """The Polly voice that speaks language (Joanna for a language not listed)."""
    return VOICE_CHOICES.get(language, VOICE_CHOICES["en-US"])[0]


def voice_problem(voice: str | None, language: str) -> str | None:
    """Why voice cannot speak language, in words; None when it can (no voice: the language's usual one)."""
    if voice is None or voice in VOICE_CHOICES.get(language, ()):
        return None
    choices = ", ".join(VOICE_CHOICES.get(language, ()))
    return f"{voice} does not speak {LANGUAGE_NAMES.get(language, language)}; it is spoken by {choices}"


def _e164(value: str) -> str:
    return to_e164(value)


def _language(value: str) -> str:
    if value not in LANGUAGES:
        raise ValueError(f"unsupported language {value!r}; one of {', '.join(sorted(LANGUAGES))}")
    return value


E164 = Annotated[str, StringConstraints(max_length=40), AfterValidator(_e164)]
Language = Annotated[str, AfterValidator(_language)]


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class Window(Strict):
    """A daily window in local time, start before end."""

    start: HHMM
    end: HHMM

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if _minutes(self.start) >= _minutes(self.end):
            raise ValueError(f"start {self.start} must be before end {self.end}")
        return self


def _range(value: tuple[str, str]) -> tuple[str, str]:
    start, end = value
    if _minutes(start) >= _minutes(end):
        raise ValueError(f"range {start}-{end} ends before it starts")
    return value


def _ranges(value: list[tuple[str, str]]) -> list[tuple[str, str]]:
    ordered = sorted(value, key=lambda r: _minutes(r[0]))
    for (_, end), (start, _) in pairwise(ordered):
        if _minutes(start) < _minutes(end):
            raise ValueError(f"ranges overlap at {start}")
    return ordered


Range = Annotated[tuple[HHMM, HHMM], AfterValidator(_range)]
DayHours = Annotated[list[Range], Field(max_length=8), AfterValidator(_ranges)]


class Hours(Strict):
    """Opening hours per weekday (local time); a day left out is closed."""

    mon: DayHours = []
    tue: DayHours = []
    wed: DayHours = []
    thu: DayHours = []
    fri: DayHours = []
    sat: DayHours = []
    sun: DayHours = []


class CallerIdTrust(StrEnum):
    """When caller ID may name the caller's conversations: always, or only when the carrier attested it."""

    any = "any"
    attested = "attested"


class NumberConfig(Strict):
    """What an admin sets for one support number. No business_hours means always open."""

    label: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    brand: Brand
    language: Language = "en-US"
    languages: Annotated[list[Language], Field(max_length=10)] = Field(
        default=[], description="further languages the number offers; a customer's locale among them is used")
    voice: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]+(\.[A-Za-z-]+)?$", max_length=60)] | None = None
    time_zone: TimeZone
    business_hours: Hours | None = None
    holidays: Annotated[list[date], Field(max_length=366)] = []
    calling_window: Window = Window(start="08:00", end="21:00")
    agents: Annotated[list[AgentId], Field(max_length=500)] = []
    record_calls: bool = False
    survey: bool = Field(default=False, description="after the agent hangs up, the customer is asked to rate the call "
                                                    "1 to 5 by key and may leave a short comment (call.feedback)")
    caller_id: E164 | None = None
    caller_id_trust: CallerIdTrust = Field(
        default=CallerIdTrust.any,
        description="attested: the caller hears their conversations only when Twilio verified the caller ID "
                    "(SHAKEN/STIR, StirVerstat TN-Validation-Passed-A), else the call code is asked; any: caller "
                    "ID is believed, for numbers outside attestation regions")
    callback_countries: Annotated[list[Country], Field(max_length=50)] = Field(
        default=[], description="ISO countries a callback may call a number other than the customer's in; "
                                "empty: the support number's own country")
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    retry_minutes: Annotated[list[Annotated[int, Field(ge=1, le=1440)]], Field(min_length=1, max_length=10)] = [
        10, 30, 120]

    @field_validator("agents")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("voice")
    @classmethod
    def _speaks(cls, value: str | None, info: ValidationInfo) -> str | None:
        """The voice speaks the number's language (checked with the other fields, so a form names every problem at
        once; a language that failed is named on its own)."""
        language = info.data.get("language")
        if language is not None and (problem := voice_problem(value, language)):
            raise ValueError(problem)
        return value


class Number(NumberConfig):
    """A configured number as stored and returned."""

    number: str
    updated_at: datetime

    def speech_voice(self, language: str) -> str:
        """The Say voice for language: the configured one for the main language, else that language's default."""
        return self.voice if self.voice and language == self.language else default_voice(language)

    def language_for(self, locale: str | None) -> str:
        """The customer's locale when the number offers it, else the number's language."""
        offered = [self.language, *self.languages]
        if locale:
            wanted = locale.replace("_", "-")
            for language in offered:
                if language.lower() == wanted.lower():
                    return language
            primary = wanted.split("-")[0].lower()
            for language in offered:
                if language.split("-")[0].lower() == primary:
                    return language
        return self.language

    def is_open(self, moment: datetime) -> bool:
        """Whether the number takes calls at moment: not a holiday, inside the day's hours (its own zone)."""
        local = moment.astimezone(ZoneInfo(self.time_zone))
        if local.date() in self.holidays:
            return False
        if self.business_hours is None:
            return True
        ranges = getattr(self.business_hours, DAYS[local.weekday()])
        now = local.hour * 60 + local.minute
        return any(_minutes(start) <= now < _minutes(end) for start, end in ranges)


class NumberList(BaseModel):
    numbers: list[Number]


class AgentStatus(StrEnum):
    available = "available"
    away = "away"
    offline = "offline"


class AgentRole(StrEnum):
    """What an agent may do on the desk: answer calls, or also administer numbers and agents."""

    agent = "agent"
    admin = "admin"


class AgentConfig(Strict):
    """An agent: reached on a phone, or in the browser through client_identity; an admin may have neither."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    phone: E164 | None = None
    client_identity: Identity | None = None
    status: AgentStatus = AgentStatus.offline
    role: AgentRole = AgentRole.agent
    time_zone: TimeZone | None = Field(default=None, description="the zone the desk shows the agent's times in; "
                                                                "default the zone of the first number they work")

    @model_validator(mode="after")
    def _reachable(self) -> AgentConfig:
        if self.role == AgentRole.agent and not self.reachable:
            raise ValueError("an agent needs a phone or a browser identity (only an admin may have neither)")
        return self

    @property
    def reachable(self) -> bool:
        """Whether a call can ring this agent at all."""
        return bool(self.phone or self.client_identity)

    @property
    def takes_calls(self) -> bool:
        """Whether routing may ring this agent now."""
        return self.status == AgentStatus.available and self.reachable


class Agent(AgentConfig):
    id: str
    updated_at: datetime


class AgentList(BaseModel):
    agents: list[Agent]


def voice_settings(number: Number, locale: str | None) -> dict[str, str]:
    """The Say attributes for a caller: language and voice."""
    language = number.language_for(locale)
    return {"language": language, "voice": number.speech_voice(language)}
