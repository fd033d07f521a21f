"""Speech-safe text for Twilio <Say>: customer-typed words with markup, secrets and symbols scrubbed out."""

from __future__ import annotations

import html
import re
import string
import unicodedata
from collections.abc import Sequence
from typing import Protocol

_URL = re.compile(r"(?:\b(?:https?|ftp)://|\bwww\.)\S*", re.IGNORECASE)
# The lookbehind lets a match start only at the beginning of a word, which keeps a long word linear.
_EMAIL = re.compile(r"(?<![\w.+-])(?:mailto:)?[\w.+-]++@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)
_DIGIT_RUN = re.compile(r"(?<!\d)\(?\d(?:[ .()-]{0,3}\d){5,}\)?")
_SPACE_BEFORE = re.compile(r" ([.,?!:;)])")
_REPEATED = re.compile(r"([,?!:;'()-])\1+")
_DOTS = re.compile(r"\.{4,}")

_ASCII_CONTROLS = {c: " " for c in [*range(32), 127]}
_ASCII_TO_SPACE = {c: " " for c in range(128) if chr(c) not in f"{string.ascii_letters}{string.digits} .,?!:;'-()"}
_PUNCTUATION = {"\u2018": "'", "\u2019": "'", "\u3001": ",", "\u3002": ".", "\u060c": ",", "\u061b": ";",
                "\u061f": "?", "\u0964": ".", "\u0965": "."}
# Hangul fillers are letters by category but invisible, a favourite for faking a blank name.
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
_MAX_MARKS = 4  # enough for any real script, too few for "Zalgo" stacks
_MAX_WINDOW = 8192
_LAST = "Last message: "


class _Message(Protocol):
    @property
    def author(self) -> str: ...
    @property
    def text(self) -> str: ...


class _Thread(Protocol):
    @property
    def subject(self) -> str: ...
    @property
    def messages(self) -> Sequence[_Message]: ...


def _by_category(text: str) -> str:
    """Keeps letters, marks on letters and digits; drops format characters; turns other non-ASCII into spaces."""
    if text.isascii():
        return text.translate(_ASCII_CONTROLS)
    out: list[str] = []
    append, category_of = out.append, unicodedata.category
    marks = _MAX_MARKS
    for ch in text:
        if ch.isascii():
            append(ch if ch.isprintable() else " ")
            marks = 0 if ch.isalpha() else _MAX_MARKS
            continue
        category = category_of(ch)
        if category == "Cf":
            continue  # zero-width and bidi controls vanish, so they can neither split a number nor reorder text
        if category[0] == "M":
            if marks < _MAX_MARKS:
                append(ch)
                marks += 1
            continue
        letter = category[0] == "L" and ch not in _INVISIBLE_LETTERS
        marks = 0 if letter else _MAX_MARKS
        if letter or category == "Nd":
            append(ch)
        else:
            append("-" if category == "Pd" else _PUNCTUATION.get(ch, " "))
    return "".join(out)


def _drop_tail(text: str) -> str:
    """Drops a last word that may be half a link or e-mail, then trailing non-letters, so no half number survives."""
    # A longer "word" is script without spaces (Chinese, Japanese, Thai) or junk, and cutting it is harmless.
    end = text.rfind(" ", max(0, len(text) - 100))
    if end > 0:
        text = text[:end]
    i, stop = len(text), max(0, len(text) - 100)
    while i > stop and not (text[i - 1].isalpha() or unicodedata.category(text[i - 1])[0] == "M"):
        i -= 1
    return text[:i]


def _balance(text: str) -> str:
    """Drops parentheses that don't pair up (whatever they enclosed may have been scrubbed or cut) and extra spaces."""
    if "(" not in text and ")" not in text:
        return " ".join(text.split())  # most texts: no character to look at one by one
    chars, opened = list(text), []
    for i, ch in enumerate(chars):
        if ch == "(":
            opened.append(i)
        elif ch == ")":
            if opened:
                opened.pop()
            else:
                chars[i] = " "
    for i in opened:
        chars[i] = " "
    return " ".join("".join(chars).split())


def _scrub(text: str, truncated: bool) -> str:
    """Everything speech_safe does but the final cut."""
    text = _by_category(unicodedata.normalize("NFKC", html.unescape(text)))
    if truncated:
        text = _drop_tail(text)
    text = _EMAIL.sub(" ", _URL.sub(" ", text)).translate(_ASCII_TO_SPACE)
    # Symbols are spaces by now, so "4111*1111*1111*1111" is caught as surely as "4111 1111 1111 1111".
    text = _balance(_DIGIT_RUN.sub(" ", " ".join(text.split())))
    text = _SPACE_BEFORE.sub(r"\1", text).replace("( ", "(").replace("()", " ")
    text = _DOTS.sub("...", _REPEATED.sub(r"\1", text))
    return " ".join(text.split()).lstrip(".,?!:;)- ")


def _cut(text: str, limit: int) -> str:
    """At most limit characters, ending at a word boundary (mid-word only in a very long word), nothing dangling."""
    if len(text) > limit:
        start, stop = text.rfind(" ", 0, limit + 1), text.find(" ", limit)
        # A "word" longer than 40 is script without spaces or junk; better cut inside it than drop it whole.
        long_word = (stop if stop >= 0 else len(text)) - start > 41
        text = _balance(text[:limit] if long_word else text[: max(start, 0)])
    return text.rstrip(" ,;:-('")


def speech_safe(text: str, limit: int = 200) -> str:
    """Text fit for <Say>: no markup, links, e-mails, long numbers or symbols, at most limit characters."""
    if limit <= 0:
        return ""
    text = text.lstrip()
    # The output is short, so only a window of the input can matter; it grows only while junk crowds out words.
    size = 4 * limit + 100
    while True:
        cleaned = _scrub(text[:size], truncated=len(text) > size)
        if len(cleaned) >= limit or size >= len(text) or size >= _MAX_WINDOW:
            return _cut(cleaned, limit)
        size = min(4 * size, _MAX_WINDOW)


def first_name(name: str | None) -> str | None:
    """The first speakable word of a name that has a letter in it, or None."""
    for word in speech_safe(name or "", 100).split():
        word = word.strip(".,?!:;-()'")
        if any(ch.isalpha() for ch in word):
            return word
    return None


def spoken_subject(thread: _Thread, limit: int = 60) -> str:
    """The subject fit to set inside a spoken sentence: speech-safe, short, without closing punctuation."""
    return speech_safe(thread.subject or "", limit).rstrip(".?!;: ")


def last_words(thread: _Thread, limit: int = 160) -> str:
    """The customer's last message, speech-safe, as a sentence that ends; empty when there is none to say."""
    said = [m.text for m in thread.messages or () if m.author == "customer" and m.text and not m.text.isspace()]
    message = speech_safe(said[-1], limit).rstrip(",;:- ") if said else ""
    return message if not message or message.endswith((".", "?", "!")) else message + "."


def thread_summary(thread: _Thread, limit: int = 200) -> str:
    """Speech-safe subject, then the customer's last message if it fits, in at most limit characters."""
    subject = speech_safe(thread.subject or "", limit)
    said = [m.text for m in thread.messages or () if m.author == "customer" and m.text and not m.text.isspace()]
    last = said[-1] if said else ""
    lead = (subject if subject.endswith((".", "?", "!")) else subject + ".") + " " if subject else ""
    room = limit - len(lead) - len(_LAST)
    message = speech_safe(last, room) if last and room >= 20 else ""  # fewer is a word or two, out of context
    return f"{lead}{_LAST}{message}" if message else subject
