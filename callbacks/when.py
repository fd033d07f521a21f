"""Reading the time a customer asks to be called: "asap", ISO 8601, or words ("tomorrow at 3pm") in their zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dateparser

from callbacks.windows import localize

MAX_AHEAD = timedelta(days=30)
PAST_GRACE = timedelta(seconds=60)
MAX_TEXT = 100
LANGUAGES = ["en", "es", "fr"]

_ASAP = {"asap", "a.s.a.p.", "now", "right now", "as soon as possible", "ahora", "maintenant"}
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
# Exact elapsed time: dateparser adds hours to the wall clock, which is an hour off across a DST change.
_IN = re.compile(r"^(?:in|en|dans|dentro de)\s+(\d{1,4})\s*(minutes?|mins?|minutos?|hours?|hrs?|h|horas?|heures?)$")
_WORD = re.compile(r"[^\W\d_]{3,}")
_FILLERS = {"the", "and", "las", "los", "les", "del", "une", "around", "about", "for"}
_TIME = re.compile(r"\d{1,2}:\d{2}|\d{1,2}\s*(?:am|pm|a\.m\.|p\.m\.)(?!\w)|\d{1,2}h\d{2}")
_DATE = re.compile(r"\d{1,4}[/.-]\d{1,2}")
# "15h30" and "samedi 10h" are French clock times dateparser misreads; "in 2h" / "dans 2h" stay durations.
_H_MINUTES = re.compile(r"(?<![\w:])(\d{1,2})h(\d{2})(?!\w)")
_H_HOUR = re.compile(r"(?<!\bin )(?<!\ben )(?<!\bdans )(?<!\bde )(?<![\w:])(\d{1,2})h(?!\w)")
# "at 3", "a las 10", "à trois": dateparser drops or misreads a bare hour, and 1-12 could be morning or afternoon.
_HOUR_WORDS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
_AT = r"(?:(?<!\w)(?:at|a las|a la|à)\s+|@\s*)"
_BARE_HOUR = re.compile(rf"{_AT}(\d{{1,2}}|{_HOUR_WORDS})\b(?!\s*(?::|h\b|am\b|pm\b|a\.m\.|p\.m\.|o'clock))")
# dateparser reads "à 9:30" as a year and "mañana a la 1pm" not at all; the clock time alone it reads well.
_AT_CLOCK = re.compile(rf"{_AT}(?=\d|(?:{_HOUR_WORDS})\b)")
# dateparser knows "lunes" and "6 de marzo" but not "el lunes" or "el 6 de marzo".
_ARTICLE = re.compile(r"(?<!\w)el\s+")
# A text that is only a clock time ("3pm", "at 15:00", "noon") means its next occurrence.
_CLOCK_ONLY = re.compile(r"^(?:\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)|\d{1,2}:\d{2}"
                         r"|noon|midday|midnight|mediod[ií]a|medianoche|midi|minuit)$")


class WhenError(ValueError):
    """A requested time Threadline won't use; reason says why in words a customer can read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _quoted(text: str) -> str:
    # The text is customer-typed: keep what is echoed back short.
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _unreadable(text: str, hint: str = "") -> WhenError:
    return WhenError(f"couldn't read {_quoted(text)} as a time{hint}")


def _span(delta: timedelta) -> str:
    if delta % timedelta(days=1) == timedelta(0):
        days = delta // timedelta(days=1)
        return f"{days} day" if days == 1 else f"{days} days"
    hours = delta / timedelta(hours=1)
    return f"{hours:g} hours"


def _dateparse(text: str, base: datetime) -> datetime | None:
    # TIMEZONE "UTC" only matters for texts naming their own zone ("3pm EST"): those come back aware; everything
    # else comes back as a naive wall time that the caller reads in the customer's zone with zoneinfo, because
    # dateparser's own zone handling uses one fixed offset and is an hour off across a DST change.
    try:
        return dateparser.parse(text, languages=LANGUAGES, settings={
            "RELATIVE_BASE": base, "PREFER_DATES_FROM": "future", "TIMEZONE": "UTC"})
    except (ValueError, OverflowError):
        # Out-of-range readings ("in 99999999 years") raise instead of answering None.
        return None


def _numbers_used(text: str, base: datetime, result: datetime) -> bool:
    """Whether every number in text changes the reading when changed: dateparser silently drops what it can't use."""
    for match in re.finditer(r"\d+", text):
        changed = text[:match.start()] + str(int(match.group()) + 1) + text[match.end():]
        if _dateparse(changed, base) == result:
            return False
    return True


def _hour(match: re.Match[str], text: str) -> str:
    """ "at 15" is 15:00; "at 3" may be morning or afternoon, so it is refused rather than guessed."""
    hour = match.group(1)
    if hour.isdigit() and (int(hour) == 0 or 13 <= int(hour) <= 23):
        return f"{int(hour)}:00"
    if hour.isdigit() and int(hour) > 23:
        raise _unreadable(text)
    raise _unreadable(text, ": say AM or PM, or use a 24-hour time like 15:00")


def _normalised(text: str) -> str:
    """text lower-cased, with French hours and prepositions before a clock time rewritten for dateparser."""
    lowered = " ".join(text.lower().split())
    lowered = _H_HOUR.sub(r"\1:00", _H_MINUTES.sub(r"\1:\2", lowered))
    lowered = _BARE_HOUR.sub(lambda match: _hour(match, text), lowered)
    return _ARTICLE.sub("", _AT_CLOCK.sub("", lowered))


def _words(text: str, zone: str, now: datetime) -> datetime:
    """A natural-language time in zone, as a UTC instant."""
    duration = _IN.match(" ".join(text.lower().split()))
    if duration:
        amount, unit = int(duration.group(1)), duration.group(2)
        return now + (timedelta(minutes=amount) if unit.startswith("min") else timedelta(hours=amount))
    normal = _normalised(text)
    if not (_TIME.search(normal) or _DATE.search(normal)
            or any(word not in _FILLERS for word in _WORD.findall(normal))):
        # dateparser turns lone numbers and filler ("1", "the 3") into arbitrary dates.
        raise _unreadable(text)
    base = now.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    parsed = _dateparse(normal, base)
    if parsed is None or not _numbers_used(normal, base, parsed):
        raise _unreadable(text)
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    result = localize(parsed, zone)
    if _CLOCK_ONLY.match(normal) and result < now - PAST_GRACE:
        # dateparser already moves a passed clock time to tomorrow; this keeps that promise should it ever not.
        result = localize(parsed + timedelta(days=1), zone)
    return result


def parse_when(text: str, zone: str, now: datetime, max_ahead: timedelta = MAX_AHEAD) -> datetime | None:
    """The UTC instant text asks for (read in zone), None for "as soon as possible"; WhenError when unusable."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    stripped = text.strip()
    if len(stripped) > MAX_TEXT:
        raise WhenError(f"a time must be at most {MAX_TEXT} characters")
    if " ".join(stripped.lower().split()) in _ASAP:
        return None
    if not stripped:
        raise _unreadable(stripped)
    if _ISO.match(stripped):
        try:
            parsed = datetime.fromisoformat(stripped)
        except ValueError:
            raise _unreadable(stripped) from None
        try:
            when = localize(parsed, zone) if parsed.tzinfo is None else parsed.astimezone(UTC)
        except OverflowError:
            raise WhenError(f"{_quoted(stripped)} is outside the calendar Threadline can schedule") from None
    else:
        when = _words(stripped, zone, now)
    if when < now - PAST_GRACE:
        raise WhenError(f"{_quoted(stripped)} is in the past")
    if when > now + max_ahead:
        raise WhenError(f"{_quoted(stripped)} is beyond {_span(max_ahead)} from now")
    return when
