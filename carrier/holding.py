"""Calls that wait for each other: <Enqueue> (and <Leave>) with <Dial><Queue>, and <Dial><Conference>. A waiting
caller hears the waitUrl's TwiML (or hold music) until a second call takes them or joins the conference."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin

from carrier.legs import CallOver, DialOutcome, Leg, PartyHungUp
from carrier.state import new_sid
from carrier.twiml import Document, Node

MAX_QUEUE_SIZE = 100  # Twilio's default queue size
WAIT_VERBS = ("Say", "Play", "Pause")  # what a waitUrl document may do, besides Redirect, Hangup and (queues) Leave
LONG_WAIT = 3600.0
CONFERENCE_WAIT_VERBS = 13238  # Dial->Conference: Invalid Verb used in waitUrl TwiML


@dataclass
class Waiting:
    """A caller in a queue: taken (by a dequeuer), then done when their conversation ends."""

    leg: Leg
    since: float = field(default_factory=time.monotonic)
    taken: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class CallQueue:
    name: str
    sid: str = field(default_factory=lambda: new_sid("QU"))
    callers: list[Waiting] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


@dataclass
class Room:
    """A conference: it starts once two are in and one of them starts it; it ends when its last member leaves or
    one who ends it on exit does."""

    name: str
    sid: str = field(default_factory=lambda: new_sid("CF"))
    members: list[tuple[Leg, bool]] = field(default_factory=list)  # (leg, startConferenceOnEnter)
    started: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)


class Lobby:
    """The account's queues and conferences, by name."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queues: dict[str, CallQueue] = {}
        self.rooms: dict[str, Room] = {}

    def queue(self, name: str) -> CallQueue:
        with self.lock:
            return self.queues.setdefault(name, CallQueue(name))

    def room(self, name: str) -> Room:
        with self.lock:
            room = self.rooms.get(name)
            if room is None or room.ended.is_set():  # a name used again is a new conference
                room = self.rooms[name] = Room(name)
            return room


class Holding:
    """Queues and conferences (a mixin of Verbs: it reaches calls through the engine's methods)."""

    _lobby: Lobby

    @property
    def lobby(self) -> Lobby:
        with self.state.lock:
            if "_lobby" not in self.__dict__:
                self._lobby = Lobby()
            return self._lobby

    def _seconds_since(self, moment: float) -> int:
        return math.ceil((time.monotonic() - moment) / self.scale)

    def hold(self, leg: Leg, wait: tuple[str, str] | None, params: Callable[[], dict[str, str]],
             released: threading.Event, in_queue: bool) -> bool:
        """Play the waitUrl's TwiML, requested again each time it ends, until released; True if it ran <Leave>."""
        if wait is None:  # Twilio's own hold music: the carrier fetches nothing
            self.event(leg.call, "heard", verb="Play", text="(hold music)")
        while not released.is_set():
            if wait is None:
                leg.wait(LONG_WAIT, until=released)
                continue
            document = self.fetch(leg, wait[0], wait[1], params())
            started = time.monotonic()
            for verb in document.verbs:
                if released.is_set():
                    break
                if verb.tag in WAIT_VERBS:
                    self.speak(leg, verb, until=released)
                elif verb.tag == "Leave" and in_queue:
                    return True
                elif verb.tag == "Hangup":
                    self.verb_hangup(leg, verb, document)
                    raise CallOver
                elif verb.tag == "Redirect":
                    wait = (urljoin(document.url or "", verb.text), verb.attr("method", "POST") or "POST")
                    break
                elif in_queue:
                    self.event(leg.call, "skipped", verb=verb.tag, why="not run in a queue's waitUrl")
                else:
                    self.notify(leg.call, CONFERENCE_WAIT_VERBS, f"Dial->Conference: Invalid Verb <{verb.tag}> "
                                "used in waitUrl TwiML", url=wait[0])
            if (time.monotonic() - started) / self.scale < 1:  # a document that takes no time: not in a tight loop
                leg.wait(1, until=released)
        return False

    @staticmethod
    def _wait_url(verb: Node, document: Document) -> tuple[str, str] | None:
        url = verb.attr("waitUrl")
        return (urljoin(document.url or "", url), verb.attr("waitUrlMethod", "POST") or "POST") if url else None

    # --- queues --------------------------------------------------------------------------------------------

    def verb_enqueue(self, leg: Leg, verb: Node, document: Document) -> Document | None:
        queue = self.lobby.queue(verb.text)
        entry = Waiting(leg)
        with self.lobby.lock:
            full = len(queue.callers) >= MAX_QUEUE_SIZE
            if not full:
                queue.callers.append(entry)
                queue.arrived.set()
        result = "queue-full"
        if not full:
            self.event(leg.call, "enqueued", queue=queue.name, queue_sid=queue.sid)
            result = "hangup"
            try:
                def position() -> dict[str, str]:
                    with self.lobby.lock:
                        at = queue.callers.index(entry) + 1 if entry in queue.callers else 0
                        size = len(queue.callers)
                    return {"QueueSid": queue.sid, "QueuePosition": str(at), "CurrentQueueSize": str(size),
                            "QueueTime": str(self._seconds_since(entry.since)), "AvgQueueTime": "0",
                            "MaxQueueSize": str(MAX_QUEUE_SIZE)}
                result = "leave" if self.hold(leg, self._wait_url(verb, document), position, entry.taken,
                                              True) else "bridged"
                while result == "bridged" and not entry.done.is_set():  # the dequeuer's thread runs the talk
                    leg.wait(LONG_WAIT, until=entry.done)
            except PartyHungUp:
                if entry.taken.is_set():
                    result = "bridged"
                self._queue_action(leg, verb, document, queue, entry, result, gone=True)
                raise
            finally:
                entry.done.set()
                with self.lobby.lock:
                    if entry in queue.callers:
                        queue.callers.remove(entry)
            self.event(leg.call, "dequeued", queue=queue.name, result=result)
        return self._queue_action(leg, verb, document, queue, entry, result)

    def _queue_action(self, leg: Leg, verb: Node, document: Document, queue: CallQueue, entry: Waiting,
                      result: str, gone: bool = False) -> Document | None:
        """Enqueue's action hears why the call left the queue; without one the document goes on."""
        action = verb.attr("action")
        params = {"QueueResult": result}
        if result != "queue-full":
            params.update(QueueSid=queue.sid, QueueTime=str(self._seconds_since(entry.since)))
        if not action:
            return None
        url, method = urljoin(document.url or "", action), verb.attr("method", "POST") or "POST"
        if gone:  # the caller hung up: Twilio still reports it, and nothing runs after
            self.webhooks.send(url, method, {**self.params(leg.call), "CallStatus": "completed", **params})
            return None
        return self.fetch(leg, url, method, params)

    def verb_leave(self, leg: Leg, verb: Node, document: Document) -> None:
        """<Leave> outside a queue's waitUrl has no queue to leave: the document goes on."""
        self.event(leg.call, "skipped", verb="Leave", why="the call is not in a queue")

    def dial_queue(self, leg: Leg, noun: Node, timeout: float, time_limit: float) -> DialOutcome:
        """Take the caller at the front of the queue (waiting up to the Dial's timeout for one) and bridge them."""
        queue, began, entry = self.lobby.queue(noun.text), time.monotonic(), None
        while entry is None:
            with self.lobby.lock:
                entry = queue.callers.pop(0) if queue.callers else None
                if entry is None:
                    queue.arrived.clear()
            if entry is None:
                if self._seconds_since(began) >= timeout:
                    return DialOutcome("no-answer", None, 0, False)
                leg.wait(1, until=queue.arrived)
        entry.taken.set()
        bridged = time.monotonic()
        self.event(leg.call, "bridged", to=entry.leg.call.from_, sid=entry.leg.call.sid, queue=queue.name)
        self.recorder.answered(leg.call)
        try:
            leg.wait(time_limit, until=entry.done)
        except PartyHungUp:
            self.event(leg.call, "hangup", by="caller")
            self.finish(leg, "completed")
        finally:
            entry.done.set()
        return DialOutcome("completed", entry.leg.call, self._seconds_since(bridged), True)

    # --- conferences -------------------------------------------------------------------------------------

    def dial_conference(self, leg: Leg, noun: Node, document: Document, time_limit: float) -> DialOutcome:
        """Join the named conference: hold until it starts, then stay until it ends or this caller leaves."""
        room = self.lobby.room(noun.text)
        member = (leg, noun.flag("startConferenceOnEnter", True))
        with self.lobby.lock:
            room.members.append(member)
            if len(room.members) >= 2 and any(starts for _, starts in room.members):
                room.started.set()
        self.event(leg.call, "conference_joined", conference=room.name, conference_sid=room.sid)
        joined = time.monotonic()
        try:
            self.hold(leg, self._wait_url(noun, document), dict, room.started, False)
            self.event(leg.call, "conference_started", conference=room.name)
            leg.wait(time_limit, until=room.ended)
        except PartyHungUp:
            self.event(leg.call, "hangup", by="caller")
            self.finish(leg, "completed")
        finally:
            with self.lobby.lock:
                room.members.remove(member)
                if noun.flag("endConferenceOnExit") or not room.members:
                    room.ended.set()
        self.event(leg.call, "conference_left", conference=room.name)
        return DialOutcome("completed", None, self._seconds_since(joined), room.started.is_set())

