"""Speech-safe summaries: hostile customer text in, something Twilio <Say> can read aloud out."""

from __future__ import annotations

import unicodedata
import xml.etree.ElementTree as ET
from types import SimpleNamespace as NS

import pytest
from twilio.twiml.voice_response import VoiceResponse

from context.schemas import Thread
from voice.summary import first_name, speech_safe, thread_summary

# Everything speech_safe may emit besides letters, combining marks and digits.
ALLOWED_PUNCTUATION = set(" .,?!:;'-()")


def fullwidth(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else "\u3000" for ch in text)


NASTY = [
    "Hi</Say><Hangup/> there",
    '<speak><break time="10s"/><prosody rate="x-slow">slow</prosody></speak>',
    "Tom &amp; Jerry ]]> <![CDATA[x]]> &#x202E;&#0;&lt;b&gt;",
    "App 😀 crash 👍🏽 👨\u200d👩\u200d👧 now 1\ufe0f\u20e3 \U000e0067\U000e0062",
    "abc\u202edcba\u202c \u2066ok\u2069 \u200bzero\ufeffwidth",
    "nul\x00here\x07bell\ttab\r\nline\x1b[31mred\x7f",
    "lone \ud800 surrogate \uffff nonchar \ue000 private \U0010ffff",
    "`{a}` [b] \\c| ^d~ *e* _f_ #g =h $i% @j +k/l",
    "Привет こんにちは مرحبا <script>alert(1)</script>",
]


def assert_speakable(text: str) -> None:
    for ch in text:
        category = unicodedata.category(ch)
        assert category[0] in "LM" or category == "Nd" or ch in ALLOWED_PUNCTUATION, f"{ch!r} in {text!r}"
    assert text == text.strip()
    assert "  " not in text


@pytest.mark.parametrize("text", NASTY)
def test_nasty_input_becomes_speakable(text):
    result = speech_safe(text)
    assert_speakable(result)
    assert len(result) <= 200


@pytest.mark.parametrize(("text", "spoken"), [
    ("Hi</Say><Hangup/> there", "Hi Say Hangup there"),
    ('<speak><break time="10s"/><prosody rate="x-slow">slow', "speak break time 10s prosody rate x-slow slow"),
    ("Tom &amp; Jerry ]]> done", "Tom Jerry done"),
    ("&lt;Hangup/&gt; &#x202E;evil", "Hangup evil"),
    ("App 😀 crash 👍🏽 👨\u200d👩\u200d👧 now", "App crash now"),
    ("flag 🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f here", "flag here"),
    ("abc\u202edcba\u202c ok", "abcdcba ok"),
    ("nul\x00here\x07bell\ttab\r\nline", "nul here bell tab line"),
    ("zero\u200bwidth soft\u00adhyphen", "zerowidth softhyphen"),
    ("Tabs\t\tand   many\n\nspaces  ", "Tabs and many spaces"),
    (fullwidth("Fullwidth <tag>"), "Fullwidth tag"),
    ("It\u2019s \u201cquoted\u201d \u2014 really", "It's quoted - really"),
    ("Help!!!!!! Now.......", "Help! Now..."),
    ("Error 404 on iOS 17.4, 3 times (twice today)", "Error 404 on iOS 17.4, 3 times (twice today)"),
    ("code 123 45", "code 123 45"),
])
def test_scrubbing(text, spoken):
    assert speech_safe(text) == spoken


@pytest.mark.parametrize("text", [
    "★☆♠♣", '<> & " ` {} [] \\ | ^ ~ * _ # =', "😀👍🏽👨\u200d👩\u200d👧", "\x00\x01\u202e\u200b", "", "   \n\t ",
    "https://example.com", "jane@example.com", "4111 1111 1111 1111",
])
def test_nothing_speakable_gives_an_empty_string(text):
    assert speech_safe(text) == ""


@pytest.mark.parametrize("number", [
    "4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "4111.1111.1111.1111", "4111 1111 1111 111",
    "4111\u200b1111\u200b1111\u200b1111", fullwidth("4111 1111 1111 1111"), "4111*1111*1111*1111", "4111_1111/1111",
    "+1 (415) 555-0123", "(415)555-0123", "415.555.0123", "+44 20 7946 0958", "12-34-56-78", "123456", "12 34 56",
    "٠١٢٣٤٥٦٧",
])
def test_long_numbers_are_removed(number):
    result = speech_safe(f"My number is {number} thanks")
    assert result == "My number is thanks"


def test_a_number_in_parentheses_leaves_no_stray_parenthesis():
    assert speech_safe("Call me (415 555 0123) today") == "Call me today"
    assert speech_safe("Call me on (415) 555-0123 today") == "Call me on today"


@pytest.mark.parametrize("address", [
    "jane.doe+tag@example.co.uk", "mailto:bob@example.org", fullwidth("JANE@EXAMPLE.COM"), "x_y-z@sub.domain.io",
])
def test_emails_are_removed(address):
    assert speech_safe(f"Write to {address} please.") == "Write to please."


@pytest.mark.parametrize("url", [
    "https://evil.example/a?b=<c>&d=1", "http://x.example", "HTTPS://EXAMPLE.COM/PATH", "ftp://files.example.org/x.zip",
    "www.example.com/path?q=1", "www.example.com",
])
def test_urls_are_removed(url):
    assert speech_safe(f"See {url} now") == "See now"


@pytest.mark.parametrize("text", [
    "Привет", "こんにちは", "مرحبا", "नमस्ते", "สวัสดี", "שלום", "你好世界", "Ελληνικά", "Ünïcödé",
])
def test_other_scripts_are_kept(text):
    assert speech_safe(f"{text}, {text}!") == f"{text}, {text}!"


def test_combining_marks_are_kept_but_zalgo_stacks_are_capped():
    result = speech_safe("Z" + "\u0301" * 50 + "algo")
    assert "".join(ch for ch in unicodedata.normalize("NFD", result) if not unicodedata.combining(ch)) == "Zalgo"
    assert len(result) <= 9


@pytest.mark.parametrize("text", [
    "x" * 100_000,
    "word " * 20_000,
    "😀" * 100_000,
    "4111 1111 1111 1111 " * 5_000,
    "a@" * 50_000,
    "1 " * 50_000,
    "( " * 50_000,
    "é" + "&#" * 50_000,
    "<speak>" * 15_000,
    "\u0301" * 100_000,
    "https://" + "a" * 100_000,
])
def test_100_kb_of_input_is_bounded(text):
    result = speech_safe(text)
    assert len(result) <= 200
    assert_speakable(result)


def test_words_after_a_screen_of_junk_still_count():
    assert speech_safe("😀" * 5_000 + " the app crashes") == "the app crashes"


@pytest.mark.parametrize(("before", "paddings"), [
    ("word " * 39, range(660, 720)),  # the first window: 900 characters for limit 200
    ("😀" * 8_000 + " word" * 30, range(60)),  # the largest window: 8192 characters
])
def test_a_number_or_address_cut_by_the_input_window_leaks_nothing(before, paddings):
    # Only a window of the input is read; wherever its edge falls in a card number or address, none of it may be spoken.
    for padding in paddings:
        for secret in ("4111 1111 1111 1111", "4111*1111*1111*1111", "jane.doe@example.com", "https://example.com/x"):
            result = speech_safe(f"{before}{'😀' * padding} {secret} {'$' * 300} tail")
            assert not any(ch.isdigit() for ch in result), result
            assert "jane" not in result and "example" not in result, result
            assert len(result) <= 200


def test_cut_at_a_word_boundary():
    assert speech_safe("The app closes as soon as I log in", 20) == "The app closes as"
    assert speech_safe("one, two, three", 9) == "one, two"
    assert speech_safe("Crash on login (", 200) == "Crash on login"
    assert speech_safe("Crash (when logging in)", 12) == "Crash when"
    assert speech_safe("word", 0) == ""


def test_every_cut_is_whole_words_without_dangling_punctuation():
    text = "Hi, the app crashes: every time I log in - twice today; help me please!"
    boundaries = [i for i, ch in enumerate(text) if ch == " "] + [len(text)]
    for limit in range(len(text) + 2):
        end = max((i for i in boundaries if i <= limit), default=0)
        assert speech_safe(text, limit) == text[:end].rstrip(" ,;:-"), limit


def test_only_a_very_long_word_is_cut_inside():
    assert speech_safe("こんにちは" * 100, 20) == "こんにちは" * 4
    assert speech_safe("Hi " + "こんにちは" * 100, 20) == "Hi " + "こんにちは" * 3 + "こん"
    assert speech_safe("Hi " + "x" * 30, 20) == "Hi"
    assert speech_safe("Supercalifragilistic", 10) == ""


@pytest.mark.parametrize("text", [*NASTY, "Tom & Jerry's \"quote\" ]]> --> <!-- x", "x" * 300, "😀" * 1_000 + " hi"])
def test_output_survives_twiml_unchanged(text):
    summary = speech_safe(text)
    response = VoiceResponse()
    response.say(f"Hi Jane. Are you calling about {summary}?")
    root = ET.fromstring(str(response))
    (say,) = list(root)
    assert say.tag == "Say"
    assert list(say) == []
    assert say.text == f"Hi Jane. Are you calling about {summary}?"


@pytest.mark.parametrize(("name", "first"), [
    ("Jane Doe", "Jane"),
    ("  jane   doe ", "jane"),
    ("O'Brien", "O'Brien"),
    ("Jean-Luc Picard", "Jean-Luc"),
    ("Dr. Jane Doe", "Dr"),
    ("😀 Jane", "Jane"),
    ("(Jane) Doe", "Jane"),
    ("Привет Мир", "Привет"),
    ("\u202eenaJ", "enaJ"),
    ("</Say>Jane", "Say"),
    (None, None),
    ("", None),
    ("   ", None),
    ("★☆♠", None),
    ("12345", None),
    ("\u3164", None),
    ("jane@example.com", None),
])
def test_first_name(name, first):
    assert first_name(name) == first


def message(author: str, text: str | None) -> NS:
    return NS(author=author, text=text)


def test_summary_is_subject_and_last_customer_message():
    thread = NS(subject="App crashes at login", messages=[
        message("customer", "It broke"), message("agent", "Sorry to hear that"),
        message("customer", "The app closes as soon as I log in"), message("bot", "A person will reply soon"),
    ])
    assert thread_summary(thread) == "App crashes at login. Last message: The app closes as soon as I log in"


def test_summary_skips_blank_customer_messages_and_keeps_the_subject_punctuation():
    thread = NS(subject="Why can't I log in?", messages=[message("customer", "Still broken"), message("customer", "  "),
                                                         message("customer", None)])
    assert thread_summary(thread) == "Why can't I log in? Last message: Still broken"


def test_summary_without_customer_messages_is_the_subject():
    assert thread_summary(NS(subject="Refund <b>now</b>", messages=[message("agent", "Hello")])) == "Refund b now b"
    assert thread_summary(NS(subject="Refund", messages=[])) == "Refund"


def test_summary_when_the_message_scrubs_away_is_the_subject():
    thread = NS(subject="Card charged twice", messages=[message("customer", "4111 1111 1111 1111 😀")])
    assert thread_summary(thread) == "Card charged twice"


def test_summary_when_the_subject_fills_the_limit_is_the_subject_cut_cleanly():
    thread = NS(subject="The app crashes, " * 30, messages=[message("customer", "Please help me")])
    summary = thread_summary(thread, 50)
    assert summary == "The app crashes, The app crashes, The app crashes"


def test_summary_never_exceeds_the_limit():
    said = "The app closes as soon as I log in " * 20
    thread = NS(subject="App crashes at login", messages=[message("customer", said)])
    for limit in range(0, 300):
        summary = thread_summary(thread, limit)
        assert len(summary) <= limit
        assert not summary.endswith((",", "(", " ", ":"))


def test_summary_of_scrubbed_subject_still_gives_the_message():
    thread = NS(subject="😀😀😀", messages=[message("customer", "Nothing works")])
    assert thread_summary(thread) == "Last message: Nothing works"


def test_summary_of_nothing_speakable_is_empty():
    thread = NS(subject="<>{}[]", messages=[message("customer", "https://example.com jane@example.com 😀")])
    assert thread_summary(thread) == ""


def test_summary_of_a_real_thread():
    thread = Thread.model_validate({
        "id": "t-1", "subject": "Login </Say> fails", "customer": {"name": "Jane Doe", "phone": "+14155550123"},
        "created_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:05:00Z",
        "last_activity_at": "2026-11-22T10:05:00Z", "logs": [],
        "messages": [
            {"id": "m1", "author": "customer", "text": "Call me on +1 415 555 0123", "sent_at": "2026-11-22T10:00:00Z"},
            {"id": "m2", "author": "agent", "text": "Will do", "sent_at": "2026-11-22T10:01:00Z"},
        ],
    })
    assert thread_summary(thread) == "Login Say fails. Last message: Call me on"
    assert first_name(thread.customer.name) == "Jane"
