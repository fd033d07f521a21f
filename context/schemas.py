"""The thread contract: pydantic models that validate what comes in and shape what goes out."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from context.phones import region_of_locale, to_e164
from core import keys

MAX_MESSAGE_TEXT = 10_000
THREAD_ID_PATTERN = keys.ID_PATTERN

Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")]
Short = Annotated[str, StringConstraints(max_length=200)]
Brand = Annotated[str, StringConstraints(min_length=1, max_length=60)]  # as long as a support number's brand


def of_brand(thread_brand: str | None, brand: str) -> bool:
    """Whether a thread of thread_brand belongs on a number of brand: the same in any letter case, or no brand."""
    return not thread_brand or thread_brand.casefold() == brand.casefold()


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the dates that can be stored (years 1 to 9999 in UTC)") from None


# Files in the zone database that are no place's time: the host's clock, a placeholder, POSIX defaults, leap seconds.
_PSEUDO_ZONES = {"localtime", "Factory", "posixrules"}


@cache
def real_time_zones() -> frozenset[str]:
    """The IANA names of places' time zones (and their links), without the database's pseudo zones."""
    return frozenset(name for name in available_timezones()
                     if name not in _PSEUDO_ZONES and not name.startswith(("right/", "posix/")))


def _time_zone(value: str) -> str:
    if value not in real_time_zones():
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as America/New_York)")
    return value


# In JSON Schema's dialect (no flags), so that the OpenAPI document states the same rule.
_HTTP_URL = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/]+"


def _http_url(value: str) -> str:
    if not re.match(_HTTP_URL, value):
        raise ValueError("must be an http:// or https:// URL")
    return value


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]
TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_time_zone),
                     Field(json_schema_extra={"description": "an IANA time zone, e.g. America/New_York"})]


class Strict(BaseModel):
    """Refuses unknown fields and trims surrounding white space from strings."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ThreadStatus(StrEnum):
    open = "open"
    pending = "pending"
    resolved = "resolved"


class Author(StrEnum):
    customer = "customer"
    agent = "agent"
    bot = "bot"


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"
    fatal = "fatal"


class Customer(Strict):
    """The person behind the thread; locale comes before phone because it decides how a national number reads."""

    id: Annotated[str, StringConstraints(max_length=128)] | None = None
    name: Short | None = None
    email: Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    locale: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")] | None = None
    time_zone: TimeZone | None = None
    phone: Annotated[str, StringConstraints(max_length=40)] = Field(
        description="any common form; stored and returned in E.164, a national number read in the locale's region")

    @field_validator("phone")
    @classmethod
    def _normalise_phone(cls, value: str, info: ValidationInfo) -> str:
        return to_e164(value, region_of_locale(info.data.get("locale")))


class Device(Strict):
    platform: Short | None = None
    os_version: Short | None = None
    app_version: Short | None = None
    model: Short | None = None


class Attachment(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    url: Annotated[str, StringConstraints(max_length=2048), AfterValidator(_http_url),
                   Field(json_schema_extra={"pattern": _HTTP_URL})]
    content_type: Annotated[str, StringConstraints(max_length=127)] | None = None


class Message(Strict):
    id: Id
    author: Author
    name: Short | None = None
    text: Annotated[str, StringConstraints(max_length=MAX_MESSAGE_TEXT)] = ""
    sent_at: UtcDatetime
    attachments: Annotated[list[Attachment], Field(max_length=20)] = []


class LogEntry(Strict):
    at: UtcDatetime
    level: LogLevel
    message: Annotated[str, StringConstraints(min_length=1, max_length=MAX_MESSAGE_TEXT)]


MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Metadata = Annotated[dict[MetadataKey, Annotated[str, StringConstraints(max_length=1000)]], Field(max_length=100)]


class ThreadAttributes(Strict):
    subject: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    status: ThreadStatus = ThreadStatus.open
    customer: Customer
    brand: Brand | None = Field(
        default=None, description="the brand the thread belongs to: only that brand's support numbers (any letter "
                                  "case) match it by caller ID; without one, any number does")
    device: Device | None = None
    metadata: Metadata = {}


class ThreadIn(ThreadAttributes):
    """PUT body: attributes replace the stored ones; messages and logs are merged in, never removed."""

    messages: Annotated[list[Message], Field(max_length=1000)] = []
    logs: Annotated[list[LogEntry], Field(max_length=1000)] = []


class Thread(ThreadAttributes):
    """A whole thread as stored: messages oldest first, the newest ones kept."""

    id: str
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime
    messages: list[Message]
    logs: list[LogEntry]


class ThreadSummary(ThreadAttributes):
    """A thread without its transcript, for lists."""

    id: str
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime
    message_count: int


class ThreadList(BaseModel):
    threads: list[ThreadSummary]


class LogsIn(RootModel[LogEntry | Annotated[list[LogEntry], Field(min_length=1, max_length=1000)]]):
    """One log entry or a list of them."""

    def entries(self) -> list[LogEntry]:
        return self.root if isinstance(self.root, list) else [self.root]


class LogsAccepted(BaseModel):
    accepted: int
    stored: int


class CallCode(BaseModel):
    code: str
    expires_at: datetime


class PhoneQuery(Strict):
    phone: Annotated[str, StringConstraints(max_length=40)] = Field(description="E.164, e.g. +14155550123")
    limit: Annotated[int, Field(ge=1, le=100)] = 20

    @field_validator("phone", mode="before")
    @classmethod
    def _plus_from_query(cls, value: object) -> object:
        # An unencoded '+' in a query string arrives as a space.
        if isinstance(value, str) and value.startswith(" "):
            return "+" + value.strip()
        return value

    @field_validator("phone")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return to_e164(value)
