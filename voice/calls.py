"""Call history: each call's parties, status and steps (keys, speech, agents), linked to its thread."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import redis
from pydantic import BaseModel, Field

from callbacks.outcomes import FINAL_STATUSES
from context.events import WRITE_EVENTS, Event, Outbox
from core import keys
from core.extensions import Shared
from core.validation import whole_number

log = logging.getLogger(__name__)

# KEYS: call hash, steps list. ARGV: sequence number, ttl, step JSON or '', then field/value pairs.
# Applies a status callback only if its SequenceNumber is newer than the last one applied, with its step if any.
_APPLY_STATUS = """
local last = tonumber(redis.call('HGET', KEYS[1], 'status_seq') or '-1')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('HSET', KEYS[1], 'status_seq', ARGV[1], unpack(ARGV, 4))
if ARGV[3] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return 1
"""

# Starts a call's record unless it exists (Twilio may deliver the first webhook twice), and logs its first step:
# KEYS[k] the call hash, KEYS[k + 1] its steps; ttl in seconds, step the JSON or '', the field/value pairs from ARGV[f].
OPEN_CALL = """
local function open_call(k, ttl, step, f)
  if redis.call('EXISTS', KEYS[k]) == 0 then
    redis.call('HSET', KEYS[k], unpack(ARGV, f))
    redis.call('EXPIRE', KEYS[k], ttl)
  end
  if step ~= '' then
    redis.call('RPUSH', KEYS[k + 1], step)
    redis.call('EXPIRE', KEYS[k + 1], ttl)
  end
end
"""
_OPEN = OPEN_CALL + "open_call(1, ARGV[1], ARGV[2], 3)\nreturn 1"  # ARGV: ttl, step, field/value pairs

# KEYS: call hash, steps list, recording key, events... ARGV: ttl, recording JSON, step JSON, call SID, events...
# Stores a recording on its call once, with its events: -1 when the call is unknown, 0 when that recording was
# stored already (then nothing is written).
_ADD_RECORDING = WRITE_EVENTS + """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if not redis.call('SET', KEYS[3], ARGV[4], 'NX', 'EX', ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'recording', ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[1])
write_events(4, 5)
return 1
"""

HISTORY_TTL = 400 * 24 * 3600  # a call record outlives the thread's usefulness, not forever


class Step(BaseModel):
    at: datetime
    kind: str
    detail: dict[str, Any] = {}


class CallRecording(BaseModel):
    """The recording of a call's conversation with the agent, as Twilio reported it."""

    sid: str = Field(description="Twilio's RecordingSid")
    url: str | None = Field(default=None, description="Twilio's RecordingUrl: fetching it needs the account's "
                                                      "credentials (agents play it through the desk)")
    duration: int | None = Field(default=None, description="seconds")
    channels: int | None = Field(default=None, description="2: the caller and the agent each on a channel")

    @property
    def length(self) -> str:
        """The duration as people read it: m:ss."""
        minutes, seconds = divmod(self.duration or 0, 60)
        return f"{minutes}:{seconds:02d}"


class RecordingStored(StrEnum):
    """What storing a recording did."""

    stored = "stored"
    already = "already"  # the same RecordingSid again: nothing changed
    unknown_call = "unknown_call"


class CallRecord(BaseModel):
    """One call as the thread's history shows it."""

    sid: str
    thread_id: str | None = None
    direction: str
    number: str | None = None
    caller: str | None = None
    status: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration: int | None = None
    agent_id: str | None = None
    recording_url: str | None = Field(default=None, description="the voicemail left on the call, if any")
    recording: CallRecording | None = Field(default=None, description="the recorded conversation, when the number "
                                                                     "records its calls")
    steps: list[Step] = []


class CallList(BaseModel):
    calls: list[CallRecord]


def _now() -> datetime:
    return datetime.now(UTC)


def step_json(kind: str, **detail: Any) -> str:
    """A step of a call's history as stored: what happened now."""
    return Step(at=_now(), kind=kind, detail=detail).model_dump_json()


def opening(sid: str, direction: str, number: str, caller: str) -> list[str]:
    """The field/value pairs a call's record starts with (OPEN_CALL's last arguments)."""
    fields = {"sid": sid, "direction": direction, "number": number, "caller": caller, "started_at": _now().isoformat()}
    return [item for pair in fields.items() for item in pair]


class CallStore:
    """Writes are single Redis commands or scripts, so Twilio's retries and reorderings can't tear a record."""

    def __init__(self, redis_client: redis.Redis, outbox: Outbox) -> None:
        self.redis, self.outbox = redis_client, outbox
        self._apply_status = redis_client.register_script(_APPLY_STATUS)
        self._open = redis_client.register_script(_OPEN)
        self._add_recording = redis_client.register_script(_ADD_RECORDING)

    def open(self, sid: str, direction: str, number: str, caller: str, first_step: str | None = None,
             **detail: Any) -> None:
        """Start a call's record unless it exists, with its first step: one round trip on the hot path."""
        entry = step_json(first_step, **detail) if first_step else ""
        self._open(keys=[keys.call(sid), keys.call_steps(sid)],
                   args=[HISTORY_TTL, entry, *opening(sid, direction, number, caller)])

    def step(self, sid: str, kind: str, announce: Sequence[Event] = (), **detail: Any) -> None:
        """Append what just happened on the call, and write the events that tell it in the same transaction."""
        entry = step_json(kind, **detail)
        with self.redis.pipeline() as pipe:
            pipe.rpush(keys.call_steps(sid), entry)
            pipe.expire(keys.call_steps(sid), HISTORY_TTL)
            staged = self.outbox.write(announce, pipe)
            pipe.execute()
        self.outbox.send(staged)

    def link(self, sid: str, thread_id: str) -> None:
        """Attach the call to a thread: it then shows in the thread's call history."""
        started = self.redis.hget(keys.call(sid), "started_at")
        score = datetime.fromisoformat(started).timestamp() * 1000 if started else _now().timestamp() * 1000
        with self.redis.pipeline() as pipe:
            pipe.hset(keys.call(sid), "thread_id", thread_id)
            pipe.zadd(keys.thread_calls(thread_id), {sid: score})
            pipe.execute()

    def accept(self, sid: str, agent_id: str) -> str | None:
        """The agent took the call: named on its record. The call's direction, read in the same round trip: inbound,
        or outbound-api for a call Threadline placed; None for a call it has no record of."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.call(sid), "agent_id", agent_id)
            pipe.hget(keys.call(sid), "direction")
            return pipe.execute()[1]

    def set(self, sid: str, **fields: str) -> None:
        self.redis.hset(keys.call(sid), mapping=fields)

    def apply_status(self, sid: str, sequence: str, status: str, duration: str | None, with_step: bool = False) -> bool:
        """Apply a status callback (Twilio's raw SequenceNumber and CallDuration) unless a later one was applied;
        with_step logs it as a step in the same script, so the status never shows without its step."""
        fields = ["status", status]
        if status in FINAL_STATUSES:
            fields += ["ended_at", _now().isoformat()]
            seconds = whole_number(duration)
            if seconds is not None:
                fields += ["duration", str(seconds)]
            elif duration is not None:
                log.warning("call %s: CallDuration %r is not a whole number of seconds; not kept", sid, duration[:20])
        order = whole_number(sequence) or 0
        step = Step(at=_now(), kind="status", detail={"status": status, "sequence": sequence}).model_dump_json() \
            if with_step else ""
        return bool(self._apply_status(keys=[keys.call(sid), keys.call_steps(sid)],
                                       args=[order, HISTORY_TTL, step, *fields]))

    def get(self, sid: str) -> CallRecord | None:
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.call(sid))
            pipe.lrange(keys.call_steps(sid), 0, -1)
            fields, steps = pipe.execute()
        if not fields:
            return None
        fields.pop("status_seq", None)
        if whole_number(fields.get("duration")) is None:
            fields.pop("duration", None)  # a value kept before durations were checked must not break the history
        recording = fields.pop("recording", None)
        return CallRecord(**fields, recording=CallRecording.model_validate_json(recording) if recording else None,
                          steps=[Step(**json.loads(s)) for s in steps])

    def add_recording(self, sid: str, recording: CallRecording, announce: Sequence[Event] = ()) -> RecordingStored:
        """Keep the recording on its call, once per RecordingSid, with a step and its events (one script)."""
        step = Step(at=_now(), kind="recorded", detail={"recording_sid": recording.sid,
                                                        "duration": recording.duration}).model_dump_json()
        staged = self.outbox.stage(announce)
        done = self._add_recording(
            keys=[keys.call(sid), keys.call_steps(sid), keys.recording(recording.sid), *staged.keys],
            args=[HISTORY_TTL, recording.model_dump_json(), step, sid, *staged.args])
        if int(done) == 1:
            self.outbox.send(staged)
        return {1: RecordingStored.stored, 0: RecordingStored.already}.get(int(done), RecordingStored.unknown_call)

    def for_thread(self, thread_id: str, limit: int = 50) -> list[CallRecord]:
        """The thread's calls, newest first."""
        sids = self.redis.zrevrange(keys.thread_calls(thread_id), 0, limit - 1)
        return [record for sid in sids if (record := self.get(sid)) is not None]


CALLS: Shared[CallStore] = Shared("calls")
