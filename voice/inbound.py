"""An inbound call's first webhook in one Redis round trip: the replay claim, the caller's open threads of the
dialled brand with what the greeting says of them, and the call's record opened, the dialled number read from the
process's DirectoryCache."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from flask import g, request

from context.store import BRAND_PAGE, BRAND_SCAN
from core import keys
from core.extensions import Shared
from directory.models import CallerIdTrust, Number
from directory.store import DIRECTORY_CACHE
from reports.counters import COUNT_ONCE, Count, day_key
from voice.calls import HISTORY_TTL, OPEN_CALL, opening, step_json
from voice.security import PENDING, REBUILT, REPLAY_TTL

MAX_CHOICES = 3  # threads a caller is offered
PROMPT_MESSAGES = 20  # enough recent messages to find the last customer and agent ones
_MARK = "\x00"  # stands for an id in a key name, for the matched ids in a step's JSON, for a version never read

# KEYS: directory version, the caller's open threads, call hash, call steps, then those there are of: idempotency
# token key; the number's report day and the call's counted marks.
# ARGV: 1 the directory version the caller's copy was read under, 2 the request's fingerprint, 3 replay ttl,
# 4 the pending mark, 5-6 a webhook key around its fingerprint, 7 '1' to look for the caller's threads, 8 the
# number's brand in lower case ('' when it is not ASCII), 9 at most that many threads, 10-11 brand page and scan,
# 12 newest messages read, 13-18 a thread's hash, messages and order keys around its id, 19 '1' to open the record,
# 20 its first step when no thread is found, 21-22 the step around the found ids' JSON ('' '': the same step),
# 23 the history ttl, 24 the token key's index in KEYS (0: none), 25 the report day's (0: none), 26 the report's
# field for a call in, 27 the mark a request answered in one round trip is claimed with, then the record's
# field/value pairs. Opening the record counts the call in on the day.
# Returns {'stale'} when the directory changed (nothing written), {'answered', key, earlier} for a repeat,
# {'ambiguous', key} when a brand Lua cannot compare (not ASCII) was met (claimed pending, the record not opened),
# else {'fresh', key, {{id, name, subject, locale, {customer texts, newest first}}...}}, or 'again' with the same for
# a repeat of a request answered that way (read again; nothing written). Twilio repeats a request only when it got
# no answer it could play (a timeout, a lost connection, an HTTP error), so no caller heard the first one: a repeat's
# answer is built again, not kept.
_RECEIVE = OPEN_CALL + COUNT_ONCE + r"""
local function text(value)
  if type(value) == 'string' then return value end
  return ''
end
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return {'stale'} end
local fingerprint = ARGV[2]
local token_at, day_at = tonumber(ARGV[24]), tonumber(ARGV[25])
if token_at > 0 then
  redis.call('SET', KEYS[token_at], fingerprint, 'NX', 'EX', ARGV[3])
  fingerprint = redis.call('GET', KEYS[token_at])
end
local replay = ARGV[5] .. fingerprint .. ARGV[6]
local earlier = redis.call('GET', replay)
if earlier and earlier ~= ARGV[27] then return {'answered', replay, earlier} end
local again = earlier ~= false
if not again then redis.call('SET', replay, ARGV[27], 'EX', ARGV[3]) end
local found, limit = {}, tonumber(ARGV[9])
if ARGV[7] == '1' then
  local start, page, scan = 0, tonumber(ARGV[10]), tonumber(ARGV[11])
  while #found < limit and start < scan do
    local ids = redis.call('ZREVRANGE', KEYS[2], start, start + page - 1)
    if #ids == 0 then break end
    for _, id in ipairs(ids) do
      if #found >= limit then break end
      local header = redis.call('HMGET', ARGV[13] .. id .. ARGV[14], 'phone', 'doc', 'brand')
      local brand = header[3] or ''
      if header[1] and header[2] then
        local comparable = brand == '' or (ARGV[8] ~= '' and not brand:find('[\128-\255]'))
        if not comparable and not again then
          redis.call('SET', replay, ARGV[4], 'EX', ARGV[3])  -- the long way keeps its answer
          return {'ambiguous', replay}
        end
        if comparable and (brand == '' or brand:lower() == ARGV[8]) then found[#found + 1] = {id, header[2]} end
      end
    end
    start = start + page
  end
end
local threads, ids = {}, {}
for i, thread in ipairs(found) do
  local id, doc = thread[1], cjson.decode(thread[2])
  local customer = type(doc.customer) == 'table' and doc.customer or {}
  local order = redis.call('ZRANGE', ARGV[17] .. id .. ARGV[18], -tonumber(ARGV[12]), -1)
  local said = {}
  for j = #order, 1, -1 do
    local raw = redis.call('HGET', ARGV[15] .. id .. ARGV[16], order[j])
    local message = raw and cjson.decode(raw)
    if message and message.author == 'customer' and text(message.text) ~= '' then
      said[#said + 1] = message.text
      -- a letter, digit or sign is never blank; the rest Python judges (its idea of a space is Unicode's)
      if message.text:find('[%w%p]') then break end
    end
  end
  threads[i] = {id, text(customer.name), text(doc.subject), text(customer.locale), said}
  ids[i] = cjson.encode(id)
end
if ARGV[19] == '1' and not again then
  local step = ARGV[20]
  if #ids > 0 and ARGV[21] ~= '' then step = ARGV[21] .. table.concat(ids, ',') .. ARGV[22] end
  open_call(3, ARGV[23], step, 28)
  if day_at > 0 then count_once(KEYS[day_at], KEYS[day_at + 1], ARGV[26], {ARGV[26], 1}) end
end
return {again and 'again' or 'fresh', replay, threads}
"""


def _around(key: str) -> tuple[str, str]:
    """A key name from core.keys split around the id it was built with, for the script to put any id between."""
    head, _, tail = key.partition(_MARK)
    return head, tail


@dataclass(frozen=True)
class Customer:
    name: str
    locale: str


@dataclass(frozen=True)
class Said:
    """A message the customer wrote, as the greeting reads it."""

    text: str
    author: str = "customer"


@dataclass(frozen=True)
class Brief:
    """What the greeting says of one of the caller's threads: read as Threadline wrote it, without validation."""

    id: str
    subject: str
    customer: Customer
    messages: tuple[Said, ...]  # the customer's latest, oldest first


@dataclass(frozen=True)
class Opening:
    """The call's record to open: its field/value pairs and first step, which names the threads when some are found
    (the step's JSON around the mark that stands for their ids)."""

    fields: list[str]
    step: str
    step_found: str = ""
    day: str = ""  # the number's report day, where the call in is counted


@dataclass(frozen=True)
class Received:
    """What the round trip did: stale (nothing), answered (a repeat: earlier is what its key holds), ambiguous
    (claimed only), fresh (claimed, threads found, record opened) or again (a repeat of a fresh one: threads found
    again, nothing written)."""

    status: str
    replay_key: str = ""
    earlier: str | None = None
    threads: tuple[Brief, ...] = ()


class InboundCalls:
    """The one script an inbound call's first webhook runs."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self._receive = redis_client.register_script(_RECEIVE)
        self._thread_keys = (*_around(keys.thread(_MARK)), *_around(keys.thread_messages(_MARK)),
                             *_around(keys.thread_message_order(_MARK)))

    def receive(self, version: str | None, fingerprint: str, token_key: str | None, *, sid: str, caller: str,
                brand: str | None, limit: int, newest: int, opening: Opening | None) -> Received:
        """Claim the request unless the directory changed since version; with brand, find the caller's open threads
        of that brand (or none); with opening, open the call's record."""
        found_head, found_tail = opening.step_found.partition(json.dumps(_MARK))[::2] if opening else ("", "")
        day = opening.day if opening else ""
        # Only the keys there are: a Redis user allowed the app's key prefix alone may touch no other name.
        script_keys = [keys.DIRECTORY_VERSION, keys.phone_threads(caller, resolved=False), keys.call(sid),
                       keys.call_steps(sid), *([token_key] if token_key else [])]
        token_at = len(script_keys) if token_key else 0
        if day:
            script_keys += [day, keys.reported(sid)]
        args = [_MARK if version is None else version, fingerprint, REPLAY_TTL, PENDING, *_around(keys.webhook(_MARK)),
                "1" if brand else "", brand.lower() if brand and brand.isascii() else "", limit, BRAND_PAGE,
                BRAND_SCAN, newest, *self._thread_keys, "1" if opening else "", opening.step if opening else "",
                found_head, found_tail, HISTORY_TTL, token_at, len(script_keys) - 1 if day else 0, Count.calls_in.value,
                REBUILT, *(opening.fields if opening else ())]
        reply = self._receive(keys=script_keys, args=args)
        if reply[0] == "answered":
            return Received("answered", reply[1], reply[2])
        if reply[0] not in ("fresh", "again"):
            return Received(reply[0], *reply[1:])
        threads = tuple(Brief(thread_id, subject, Customer(name, locale), tuple(Said(t) for t in reversed(said)))
                        for thread_id, name, subject, locale, said in reply[2])
        return Received(reply[0], reply[1], None, threads)


INBOUND: Shared[InboundCalls] = Shared("inbound")


# Twilio's StirVerstat for a caller ID verified with full (A) attestation: the carrier knows the caller and
# their right to that number. Any other value, or none (no SHAKEN/STIR, e.g. outside the US), proves nothing.
VERIFIED = "TN-Validation-Passed-A"


def caller_id_trusted(number: Number, verstat: str | None) -> bool:
    """Whether the caller ID may name the caller's conversations on this number."""
    return number.caller_id_trust == CallerIdTrust.any or verstat == VERIFIED


@dataclass(frozen=True)
class Incoming:
    """What the first round trip of a call in found: the dialled number as cached, and the caller's threads."""

    number: Number | None
    is_open: bool
    trusted: bool
    threads: tuple[Brief, ...] | None  # None: a brand the script could not compare; read them the long way
    repeat: bool = False  # Twilio's repeat of a request answered before: counted already


@dataclass(frozen=True)
class Claimed:
    """A call in's first round trip: what it found, the key its answer is kept under ("" for none: built again on a
    repeat) and, for a repeat of a kept one, what that key holds."""

    call: Incoming
    key: str
    earlier: str | None


# Where a claim made ahead of Flask (voice/fast_lane.py) waits in the request's WSGI environ for the view, which then
# makes none of its own: a request's claim is made once.
CLAIMED = "threadline.incoming_claimed"


def claim_call(form: Mapping[str, str], fingerprint: str, token_key: str | None) -> Claimed:
    """The claim of a call in, in one round trip with the directory version check, the caller's threads and the call's
    record (the numbers cached in this process are read again when an admin changed one). In an app context."""
    sid, dialled, caller = form.get("CallSid", ""), form.get("To", ""), form.get("From", "")
    verstat = form.get("StirVerstat", "").strip() or None
    cache = DIRECTORY_CACHE.get()
    directory = cache.current
    while True:
        number = directory.numbers.get(dialled)
        is_open = number is not None and number.is_open(datetime.now(UTC))
        trusted = number is not None and caller_id_trusted(number, verstat)
        received = INBOUND.get().receive(
            directory.version, fingerprint, token_key, sid=sid, caller=caller,
            brand=number.brand if trusted and number else None, limit=MAX_CHOICES, newest=PROMPT_MESSAGES,
            opening=_opening(number, is_open, trusted, sid, dialled, caller, verstat) if number else None)
        if received.status != "stale":
            break
        directory = cache.refresh()
    built = received.status in ("fresh", "again")
    call = Incoming(number, is_open, trusted, received.threads if built else None, repeat=received.status == "again")
    # Answered in one round trip: the answer is not kept, a repeat builds it again ("" names no key to keep it under).
    return Claimed(call, "" if built else received.replay_key, received.earlier)


def claim_incoming(store: redis.Redis, fingerprint: str, token_key: str | None) -> tuple[str, str | None]:
    """answered_once's claim for a call in: the one made ahead of Flask for this request, else its own."""
    claimed = request.environ.get(CLAIMED) or claim_call(request.form, fingerprint, token_key)
    g.incoming_call = claimed.call
    return claimed.key, claimed.earlier


def _opening(number: Number, is_open: bool, trusted: bool, sid: str, dialled: str, caller: str,
             verstat: str | None) -> Opening:
    """The call's record and its first step: whether the caller ID was believed, what it matched, closed."""
    fields, day = opening(sid, "inbound", dialled, caller), day_key(number.number, number.time_zone, datetime.now(UTC))
    if not trusted:
        # An unverified caller ID could be anyone's: say nothing of its conversations, not even whether it has any.
        return Opening(fields, step_json("caller_id_not_verified" if is_open else "closed", stir_verstat=verstat,
                                         trust=number.caller_id_trust.value), day=day)
    verification = {"stir_verstat": verstat} if verstat else {}
    if not is_open:
        return Opening(fields, step_json("closed", **verification), day=day)
    return Opening(fields, step_json("no_caller_id_match", **verification),
                   step_json("matched_caller_id", threads=[_MARK], **verification), day)


def incoming_call() -> Incoming:
    """What claim_incoming found for this request."""
    return g.incoming_call
