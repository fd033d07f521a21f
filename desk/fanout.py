"""The desk's live feed in a web process: one Redis pub/sub subscription for every open event stream, fanned out."""

from __future__ import annotations

import enum
import logging
import queue
import random
import threading
import time
import weakref

import redis

from core import keys, outage
from desk.sessions import DeskSessions

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 15  # an idle stream gets a comment this often, so proxies keep it open
CHECK_SECONDS = 1.0  # how often each open stream's session is checked
# The checks and keepalives are spread over ticks this far apart, a slice of the streams each (one MGET for the
# slice): a pass over 1,000 streams at once held the worker's other requests up for its length, once a second.
TICK_SECONDS = 0.1
# Each stream belongs to one slice, the least full when it opened, and a tick visits only its own slice: a tick that
# looked through every stream for those due held a worker's webhooks up ~1 ms a tick with 1,000 streams open.
SLICES = round(CHECK_SECONDS / TICK_SECONDS)
BACKOFF_SECONDS = (0.1, 2.0)  # the first and the longest wait between tries to subscribe again


class Signal(enum.Enum):
    """What the fan-out tells a stream besides a screen pop."""

    KEEPALIVE = "keepalive"
    SIGNED_OUT = "signed out"  # the session ended or expired: the stream ends
    LOST = "lost"  # the subscription was lost: the stream ends, and the page reconnects and catches up
    STOPPING = "stopping"  # the web worker is stopping: the stream ends, and the page reconnects elsewhere


class Listener:
    """One open stream's place in the fan-out: whose pops it wants, its session, and its inbox."""

    def __init__(self, agent_id: str, session_id: str | None, slice_: int) -> None:
        self.channel = keys.screen_pop_channel(agent_id)
        self.agent_id, self.session_id, self.slice = agent_id, session_id, slice_
        self.inbox: queue.Queue[str | Signal] = queue.Queue()
        self.live = threading.Event()  # set once the subscription covers it: what is published after reaches it
        # The first keepalive somewhere in its first interval: desks that opened together (a deploy, Redis back)
        # don't all come due in the same second every interval after.
        self.beat_due = time.monotonic() + random.uniform(0.5, 1.0) * KEEPALIVE_SECONDS


_fanouts: weakref.WeakValueDictionary[int, Fanout] = weakref.WeakValueDictionary()
_fanouts_lock = threading.Lock()


def stop_all() -> int:
    """End every open stream of this process, which is stopping: a worker would otherwise wait its graceful timeout
    for them. Each page reconnects, to a worker still serving, and catches up. How many ended."""
    with _fanouts_lock:
        fanouts = list(_fanouts.values())
    return sum(fanout.stop() for fanout in fanouts)


class Fanout:
    """One pattern subscription to every agent's screen pops, read by one background thread (a greenlet under
    gevent) that hands each pop to the open streams of its agent, checks their sessions in one batch and sends
    their keepalives; it runs while streams are open and subscribes again, with backoff, when Redis comes back."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self.redis = redis_client
        self.sessions = DeskSessions(redis_client)
        self._lock = threading.Lock()
        self._listeners: dict[str, set[Listener]] = {}  # by channel
        self._slices: list[set[Listener]] = [set() for _ in range(SLICES)]
        self._tick = 0  # the slice the next tick visits
        self._running = False
        self._connected = False
        self._failures = 0  # tries to subscribe that failed in a row
        self._wake = threading.Event()  # a new stream cuts a backoff short

    @staticmethod
    def of(redis_client: redis.Redis) -> Fanout:
        """The process's fan-out on this Redis client; kept while streams use it (the thread holds it)."""
        with _fanouts_lock:
            fanout = _fanouts.get(id(redis_client))  # the fan-out holds its client, so the id isn't reused meanwhile
            if fanout is None:
                fanout = _fanouts[id(redis_client)] = Fanout(redis_client)
            return fanout

    def open(self, agent_id: str, session_id: str | None) -> Listener:
        """A stream's listener, registered: live at once when subscribed, else when the subscription is made."""
        with self._lock:
            slice_ = min(range(SLICES), key=lambda n: len(self._slices[n]))
            listener = Listener(agent_id, session_id, slice_)
            self._slices[slice_].add(listener)
            self._listeners.setdefault(listener.channel, set()).add(listener)
            if self._connected:
                listener.live.set()
            else:
                self._wake.set()
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="desk fan-out", daemon=True).start()
        return listener

    def close(self, listener: Listener) -> None:
        """The stream ended: it gets nothing more."""
        with self._lock:
            self._slices[listener.slice].discard(listener)
            group = self._listeners.get(listener.channel)
            if group is not None:
                group.discard(listener)
                if not group:
                    del self._listeners[listener.channel]

    def stop(self) -> int:
        """End every stream, live or waiting for the subscription; how many ended."""
        with self._lock:
            return self._end(Signal.STOPPING, waiting_too=True)

    # --- The background thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        while self._wanted():
            pubsub = self.redis.pubsub()
            try:
                pubsub.psubscribe(keys.SCREEN_POP_CHANNELS)
                self._serve(pubsub)
                return  # no stream is left (and the next one starts a thread of its own)
            except Exception as exc:  # whatever it was, the live streams end and the fan-out goes on
                self._failures += 1
                ended = self._lost()
                if outage.is_outage(exc):
                    log.warning("Redis unavailable: the desk fan-out lost its subscription, %d event streams "
                                "ended; subscribing again (%s)", ended, outage.reason(exc))
                else:
                    log.exception("the desk fan-out failed, %d event streams ended; subscribing again", ended)
                first, longest = BACKOFF_SECONDS
                self._wake.clear()
                self._wake.wait(min(longest, first * 2 ** (self._failures - 1)) * random.uniform(0.5, 1.0))
            finally:
                pubsub.close()

    def _wanted(self) -> bool:
        """Whether any stream is open; if not, the thread stops (the next stream starts another)."""
        with self._lock:
            if not self._listeners:
                self._running = self._connected = False
            return self._running

    def _serve(self, pubsub: redis.client.PubSub) -> None:
        """Hand out pops until no stream is left; each (re)confirmation of the subscription makes waiting streams
        live, and ends those live before it, since pops may have been published in between."""
        next_check = time.monotonic() + TICK_SECONDS
        while True:
            message = pubsub.get_message(timeout=max(0.0, next_check - time.monotonic()))
            if message is not None and message["type"] == "pmessage":
                with self._lock:
                    group = list(self._listeners.get(message["channel"], ()))
                for listener in group:
                    listener.inbox.put(message["data"])
            elif message is not None and message["type"] == "psubscribe":
                self._subscribed()
            now = time.monotonic()
            if now >= next_check:
                if not self._wanted():
                    return
                self._check(now)
                next_check = now + TICK_SECONDS

    def _subscribed(self) -> None:
        with self._lock:
            ended = self._end(Signal.LOST) if self._connected else 0  # redis-py subscribed again by itself
            self._connected, self._failures = True, 0
            for group in self._listeners.values():
                for listener in group:
                    listener.live.set()
        if ended:
            log.warning("Redis unavailable for a moment: the desk fan-out subscribed again; %d event streams ended "
                        "to catch up", ended)

    def _check(self, now: float) -> None:
        """The sessions of this tick's slice of the live streams, in one round trip, and its keepalives that are due;
        each slice comes round once every CHECK_SECONDS."""
        with self._lock:
            listeners = [listener for listener in self._slices[self._tick] if listener.live.is_set()]
            self._tick = (self._tick + 1) % SLICES
        checked = [listener for listener in listeners if listener.session_id is not None]
        owners = self.sessions.agents_of([listener.session_id or "" for listener in checked])
        for listener, owner in zip(checked, owners, strict=True):
            if owner != listener.agent_id:
                self.close(listener)
                listener.inbox.put(Signal.SIGNED_OUT)
        for listener in listeners:
            if listener.beat_due <= now:
                listener.beat_due = now + KEEPALIVE_SECONDS
                listener.inbox.put(Signal.KEEPALIVE)

    def _lost(self) -> int:
        with self._lock:
            self._connected = False
            return self._end(Signal.LOST)

    def _end(self, signal: Signal, *, waiting_too: bool = False) -> int:
        """End the live streams with signal (the lock held), and those still waiting for the subscription when
        waiting_too (else they stay). How many ended."""
        ended = 0
        for channel, group in list(self._listeners.items()):
            for listener in [listener for listener in group if waiting_too or listener.live.is_set()]:
                group.discard(listener)
                self._slices[listener.slice].discard(listener)
                listener.inbox.put(signal)
                ended += 1
            if not group:
                del self._listeners[channel]
        return ended
