"""The admin forms: a support number's and an agent's fields as an admin types them, read into the directory's data
(validated by the directory alone), and the directory's refusals put back beside the fields they are about."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from werkzeug.datastructures import MultiDict

from context.schemas import real_time_zones
from directory.models import DAYS, LANGUAGE_NAMES, VOICE_CHOICES, Agent, AgentConfig, NumberConfig
from directory.service import DirectoryError

DAY_NAMES = dict(zip(DAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
                        strict=True))
MAX_RANGES = 8  # a day's ranges, as the model allows
MAX_HOLIDAY_ROWS = 366
EMPTY_RANGE = ("", "")
NUMBER_LABELS = {
    "number": "Number", "label": "Label", "brand": "Brand", "time_zone": "Time zone", "language": "Language",
    "languages": "Further languages", "voice": "Voice", "hours": "Business hours", "holidays": "Holidays",
    "window": "Calling window", "agents": "Agents", "record_calls": "Record calls", "survey": "Survey",
    "caller_id": "Caller ID",
    "caller_id_trust": "Trust in caller ID", "callback_countries": "Countries callbacks may call",
    "max_attempts": "Attempts", "retry_minutes": "Minutes between attempts",
}
AGENT_LABELS = {"agent_id": "Agent id", "name": "Name", "phone": "Phone", "client_identity": "Browser identity",
                "status": "Status", "role": "Role", "time_zone": "Time zone"}


def _words(items: str) -> list[str]:
    """The items of a list typed as text, separated by commas or spaces."""
    return [item for item in re.split(r"[,\s]+", items) if item]


def _filled(row: str | tuple[str, ...]) -> bool:
    """Whether anything is typed in a row (a date, or a range's start or end)."""
    return any(part.strip() for part in ((row,) if isinstance(row, str) else row))


def _typed_row(rows: list[Any], index: int) -> int:
    """The row typed that became item index of the data, which leaves blank rows out."""
    filled = [i for i, row in enumerate(rows) if _filled(row)]
    return filled[index] if index < len(filled) else index


def _padded(rows: list[Any], blank: Any, most: int) -> list[Any]:
    """rows and blank ones after them to add in: at least two rows, one blank more than those filled, up to most."""
    wanted = min(most, max(2, sum(1 for row in rows if _filled(row)) + 1))
    return rows + [blank] * max(0, wanted - len(rows))


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    """The model's fields that have defaults, as JSON values."""
    return {name: to_jsonable_python(info.get_default(call_default_factory=True))
            for name, info in model.model_fields.items() if not info.is_required()}


@dataclass
class AdminForm:
    """Values as typed, by field, and the directory's problems with them, by the id of the element they are about."""

    values: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)
    labels: ClassVar[dict[str, str]] = {}
    key_field: ClassVar[str] = ""

    def data(self) -> dict[str, Any]:
        """The model's fields, from the values typed."""
        raise NotImplementedError

    def place(self, refusal: DirectoryError) -> None:
        """Put each problem of refusal beside the element it is about (unplaced ones about the whole form)."""
        found = refusal.details or [{"field": refusal.field or "",
                                     "message": refusal.message.removeprefix(f"{refusal.field}: ")}]
        for problem in found:
            self.errors.setdefault(self.element(problem["field"]), []).append(problem["message"])

    def element(self, path: str) -> str:
        """The id of the element the field path is about; "form" for none."""
        top = re.match(r"\w*", path).group(0)  # type: ignore[union-attr]
        return top if top in self.labels else "form"

    def summary(self) -> list[tuple[str, str, str]]:
        """Each problem as the element's id, its label in words and the message."""
        return [(key, self.label(key), message) for key, messages in self.errors.items() for message in messages]

    def label(self, key: str) -> str:
        """The words that name the element key."""
        return self.labels.get(key, "")


@dataclass
class NumberForm(AdminForm):
    """A support number's form: one field per NumberConfig field, hours as rows of ranges per weekday."""

    labels: ClassVar[dict[str, str]] = NUMBER_LABELS
    key_field: ClassVar[str] = "number"

    @classmethod
    def of(cls, number: NumberConfig | None) -> NumberForm:
        """The form showing number; None: a new number's defaults."""
        data = number.model_dump(mode="json") if number is not None else _defaults(NumberConfig)
        window, hours = data["calling_window"], data["business_hours"]
        values = {name: "" if data.get(name) is None else str(data[name])
                  for name in ("label", "brand", "time_zone", "language", "voice", "caller_id", "caller_id_trust",
                               "max_attempts")}
        values.update(
            number="", record_calls=data["record_calls"], survey=data["survey"], agents=data["agents"],
            languages=data["languages"],
            callback_countries=", ".join(data["callback_countries"]),
            retry_minutes=", ".join(str(m) for m in data["retry_minutes"]),
            window_start=window["start"], window_end=window["end"], always_open=hours is None,
            hours={day: [tuple(r) for r in (hours or {}).get(day, [])] for day in DAYS},
            holidays=data["holidays"])
        return cls(values)

    @classmethod
    def typed(cls, form: MultiDict[str, str]) -> NumberForm:
        """The form as the admin sent it."""
        values: dict[str, Any] = {name: form.get(name, "") for name in (
            "number", "label", "brand", "time_zone", "language", "voice", "caller_id", "caller_id_trust",
            "max_attempts", "callback_countries", "retry_minutes")}
        values.update(
            record_calls=form.get("record_calls") == "on", survey=form.get("survey") == "on",
            agents=form.getlist("agents"),
            languages=form.getlist("languages"), window_start=form.get("window-start", ""),
            window_end=form.get("window-end", ""), always_open=form.get("hours") == "always",
            hours={day: list(zip(form.getlist(f"{day}-start"), form.getlist(f"{day}-end"), strict=False))
                   for day in DAYS},
            holidays=form.getlist("holiday"))
        return cls(values)

    def data(self) -> dict[str, Any]:
        """Every NumberConfig field, from the values typed; blank rows of hours and holidays left out."""
        v = self.values
        return {
            "label": v["label"], "brand": v["brand"], "language": v["language"], "languages": v["languages"],
            "voice": v["voice"] or None, "time_zone": v["time_zone"],
            "business_hours": None if v["always_open"] else {
                day: [list(row) for row in rows if _filled(row)]
                for day, rows in v["hours"].items()},
            "holidays": [day for day in v["holidays"] if _filled(day)],
            "calling_window": {"start": v["window_start"], "end": v["window_end"]},
            "agents": v["agents"], "record_calls": v["record_calls"], "survey": v["survey"],
            "caller_id": v["caller_id"] or None,
            "caller_id_trust": v["caller_id_trust"], "callback_countries": _words(v["callback_countries"]),
            "max_attempts": v["max_attempts"], "retry_minutes": _words(v["retry_minutes"]),
        }

    def element(self, path: str) -> str:
        """Hours and holidays by the row typed: the data leaves blank rows out, so its indexes are of filled rows."""
        if match := re.fullmatch(r"business_hours\.(\w+)\[(\d+)\](?:\[([01])\])?", path):
            day, index, part = match.groups()
            row = _typed_row(self.values["hours"].get(day, []), int(index))
            return f"{day}-{('start', 'end')[int(part)]}-{row}" if part else f"{day}-row-{row}"
        if match := re.fullmatch(r"business_hours\.(\w+)", path):
            return f"hours-{match[1]}" if match[1] in DAYS else "hours"
        if match := re.fullmatch(r"holidays\[(\d+)\]", path):
            return f"holiday-{_typed_row(self.values['holidays'], int(match[1]))}"
        if match := re.fullmatch(r"calling_window\.(start|end)", path):
            return f"window-{match[1]}"
        top = re.match(r"\w*", path).group(0)  # type: ignore[union-attr]
        return super().element({"business_hours": "hours", "calling_window": "window"}.get(top, top))

    def label(self, key: str) -> str:
        """Rows of hours by their weekday, holidays and the calling window's ends by their fieldset."""
        day = key.split("-")[-1] if key.startswith("hours-") else key.split("-")[0]
        if day in DAY_NAMES:
            return f"{DAY_NAMES[day]} hours"
        if key.startswith(("holiday-", "window-")):
            return self.labels["holidays" if key.startswith("holiday") else "window"]
        return super().label(key)

    def rows(self, day: str) -> list[tuple[str, str]]:
        """The day's ranges as rows, with blank ones to add a range in."""
        return _padded(list(self.values["hours"][day]), EMPTY_RANGE, MAX_RANGES)

    def holiday_rows(self) -> list[str]:
        """The holidays as rows, with blank ones to add a holiday in."""
        return _padded(list(self.values["holidays"]), "", MAX_HOLIDAY_ROWS)

    def agent_choices(self, agents: list[Agent]) -> list[tuple[str, str]]:
        """Every agent as (id, words), then any id chosen that names no agent."""
        known = [(agent.id, f"{agent.name} ({agent.id})") for agent in agents]
        ids = {agent.id for agent in agents}
        return known + [(chosen, f"{chosen} (no such agent)") for chosen in dict.fromkeys(self.values["agents"])
                        if chosen not in ids]


def language_choices() -> list[tuple[str, str]]:
    """Every language a number may speak, as (code, words), in words' order."""
    return sorted(LANGUAGE_NAMES.items(), key=lambda item: item[1])


def voice_choices() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """The voices by language, as (language, its words, [(voice, the speaker's name)])."""
    return [(language, words, [(voice, voice.removeprefix("Polly.")) for voice in VOICE_CHOICES[language]])
            for language, words in language_choices()]


def time_zone_choices() -> list[tuple[str, str]]:
    """Every IANA time zone, as (name, words)."""
    return [(zone, zone.replace("_", " ").replace("/", " / ")) for zone in sorted(real_time_zones())]


@dataclass
class AgentForm(AdminForm):
    """An agent's form: one field per AgentConfig field."""

    labels: ClassVar[dict[str, str]] = AGENT_LABELS
    key_field: ClassVar[str] = "agent_id"

    @classmethod
    def of(cls, agent: AgentConfig | None) -> AgentForm:
        """The form showing agent; None: a new agent's defaults."""
        data = agent.model_dump(mode="json") if agent is not None else {"name": "", **_defaults(AgentConfig)}
        return cls({"agent_id": "", **{name: data[name] or "" for name in AgentConfig.model_fields}})

    @classmethod
    def typed(cls, form: MultiDict[str, str]) -> AgentForm:
        """The form as the admin sent it."""
        return cls({name: form.get(name, "") for name in ("agent_id", *AgentConfig.model_fields)})

    def data(self) -> dict[str, Any]:
        """Every AgentConfig field, from the values typed; a blank phone, identity or time zone is none."""
        optional = ("phone", "client_identity", "time_zone")
        return {name: (self.values[name] or None) if name in optional else self.values[name]
                for name in AgentConfig.model_fields}
