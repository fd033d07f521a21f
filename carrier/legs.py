"""A call leg as the engine runs it: its record, its phone's script, and what may interrupt it."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from carrier.state import Call, PhoneScript

if TYPE_CHECKING:
    from carrier.engine import Engine

POLL = 0.01


def drain(pending: queue.Queue[str]) -> list[str]:
    """Everything waiting in the queue, oldest first."""
    items = []
    while not pending.empty():
        items.append(pending.get())
    return items


@dataclass
class DialOutcome:
    """How a Dial ended, as its action hears it."""

    status: str
    child: Call | None
    duration: int
    bridged: bool


class Interrupted(Exception):
    """A REST update or the page changed the call: ('redirect', url, method), ('twiml', text), ('hangup',)."""

    def __init__(self, action: tuple[str, ...]) -> None:
        super().__init__(action[0])
        self.action = action


class PartyHungUp(Exception):
    """The phone on this leg hung up."""


class CallOver(Exception):
    """The call has ended (its final status is already set)."""


class Leg:
    """A call being run: its record, its phone's script, and what may interrupt it."""

    def __init__(self, engine: Engine, call: Call, script: PhoneScript) -> None:
        self.engine = engine
        self.call = call
        self.script = script
        self.gathers = 0
        self.answered_at: float | None = None
        self.hangup_at: float | None = None
        self.pending: tuple[str, ...] | None = None
        self.guard = threading.Lock()
        self.signal = threading.Event()
        self.manual_answer = threading.Event()
        self.manual_keys: queue.Queue[str] = queue.Queue()
        self.manual_speech: queue.Queue[str] = queue.Queue()
        self.input_arrived = threading.Event()  # a person at the page pressed a key or spoke
        self.listening: frozenset[str] = frozenset()  # what the running Gather takes: dtmf, speech; empty outside one

    def listen(self, inputs: tuple[str, ...] | list[str]) -> None:
        """A Gather starts (what it takes) or ends (nothing): input from before it is dropped, as on a phone line."""
        with self.guard:
            self.listening = frozenset(inputs) & {"dtmf", "speech"}
            for pending in (self.manual_keys, self.manual_speech):
                drain(pending)
            self.input_arrived.clear()

    def give(self, kind: str, value: str) -> bool:
        """A person at the page presses keys or speaks; False (and nothing delivered) when no Gather takes it."""
        with self.guard:
            if kind not in self.listening:
                return False
            for item in (value if kind == "dtmf" else [value]):
                (self.manual_keys if kind == "dtmf" else self.manual_speech).put(item)
            self.input_arrived.set()
            return True

    def interrupt(self, *action: str) -> None:
        """From outside: ('redirect', url, method), ('twiml', text), ('cancel',) or ('hangup',)."""
        with self.guard:
            self.pending = action
            self.signal.set()

    def hang_up(self) -> None:
        """The phone on this leg hangs up now."""
        with self.guard:
            self.hangup_at = time.monotonic()
            self.signal.set()

    def check(self) -> None:
        """Raise if something ended or redirected this leg since the last check."""
        with self.guard:
            action, self.pending = self.pending, None
            self.signal.clear()
        if action is not None:
            raise Interrupted(action)
        if self.hangup_at is not None and time.monotonic() >= self.hangup_at:
            raise PartyHungUp

    def wait(self, seconds: float, until: threading.Event | None = None) -> bool:
        """Let `seconds` of call time pass (scaled); True as soon as `until` is set. Raises on interrupts."""
        deadline = time.monotonic() + seconds * self.engine.scale
        while True:
            self.check()
            if until is not None and until.is_set():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.hangup_at is not None:
                left = min(left, max(self.hangup_at - time.monotonic(), 0) + 0.0001)
            self.signal.wait(min(left, POLL) if until is not None else left)
