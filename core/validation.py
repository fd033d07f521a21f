"""Pydantic validation failures as problems that each name their field, for the API and the directory alike."""

from __future__ import annotations

import re

from pydantic import ValidationError

_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")


def whole_number(text: str | None) -> int | None:
    """text as a whole number when it is 1-18 ASCII digits, else None (str.isdigit() also passes '²', int() fails)."""
    return int(text) if text is not None and _WHOLE_NUMBER.fullmatch(text) else None


def field_path(loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic location such as ('messages', 0, 'author') into 'messages[0].author'."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def problems(exc: ValidationError, prefix: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """Each error as {"code", "field", "message"}: missing_field, unknown_field or invalid_field, in order."""
    found = []
    for err in exc.errors(include_url=False):
        kind = err["type"]
        code = {"missing": "missing_field", "extra_forbidden": "unknown_field"}.get(kind, "invalid_field")
        message = "unknown field" if kind == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        found.append({"code": code, "field": field_path(prefix + tuple(err["loc"])), "message": message})
    return found
