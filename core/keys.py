"""Every Redis key name Threadline uses, in one place."""

from __future__ import annotations

PREFIX = "tl"

# An id that goes into a key name: no ':' (the separator), so no id can spell another record's key, and no '..'.
ID_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9._~-]{1,128}$"
ID_RULE = "1-128 letters, digits or . _ ~ - (no '..')"


def thread(thread_id: str) -> str:
    """Hash: a thread's attributes (doc JSON, phone, status, times)."""
    return f"{PREFIX}:thread:{thread_id}"


def thread_messages(thread_id: str) -> str:
    """Hash: message id -> message JSON."""
    return f"{PREFIX}:thread:{thread_id}:messages"


def thread_message_order(thread_id: str) -> str:
    """Sorted set: message ids scored by sent_at (epoch ms)."""
    return f"{PREFIX}:thread:{thread_id}:order"


def thread_logs(thread_id: str) -> str:
    """List: log entry JSON, oldest first."""
    return f"{PREFIX}:thread:{thread_id}:logs"


def phone_threads(e164: str, *, resolved: bool) -> str:
    """Sorted set: a phone's open (or resolved) thread ids scored by last activity (epoch ms)."""
    return f"{PREFIX}:phone:{e164}:{'resolved' if resolved else 'open'}"


NUMBERS = f"{PREFIX}:numbers"
AGENTS = f"{PREFIX}:agents"
# String: a random token rewritten by every write of a number or an agent, so a process's copy knows it is stale.
DIRECTORY_VERSION = f"{PREFIX}:directory:version"


def number(e164: str) -> str:
    """String: a support number's configuration JSON."""
    return f"{PREFIX}:number:{e164}"


def agent(agent_id: str) -> str:
    """String: an agent's JSON."""
    return f"{PREFIX}:agent:{agent_id}"


def call(call_sid: str) -> str:
    """Hash: a call's record (thread, parties, status, last applied SequenceNumber, times)."""
    return f"{PREFIX}:call:{call_sid}"


def call_steps(call_sid: str) -> str:
    """List: what happened on the call, step by step (JSON)."""
    return f"{PREFIX}:call:{call_sid}:steps"


def recording(recording_sid: str) -> str:
    """String with a TTL: the call a recording was stored on, so a repeated recording callback changes nothing."""
    return f"{PREFIX}:recording:{recording_sid}"


def thread_calls(thread_id: str) -> str:
    """Sorted set: the SIDs of a thread's calls scored by start (epoch ms)."""
    return f"{PREFIX}:thread:{thread_id}:calls"


def call_code(code: str) -> str:
    """String with a TTL: the thread a six-digit call code stands for."""
    return f"{PREFIX}:callcode:{code}"


def webhook(fingerprint: str) -> str:
    """String with a TTL: the response already given to a webhook request (Twilio retries)."""
    return f"{PREFIX}:webhook:{fingerprint}"


def screen_pops(agent_id: str) -> str:
    """Stream: an agent's screen pops, so a reloading desk catches up."""
    return f"{PREFIX}:agent:{agent_id}:events"


def screen_pop_channel(agent_id: str) -> str:
    """Pub/sub channel: an agent's screen pops, live."""
    return f"{PREFIX}:agent:{agent_id}:live"


def screen_pop_sent(agent_call_sid: str) -> str:
    """String with a TTL: the agent's leg whose screen pop went out (at its ringing, or at the whisper if that came
    first), so it pops once."""
    return f"{PREFIX}:screenpop:{agent_call_sid}"


SCREEN_POP_CHANNELS = screen_pop_channel("*")  # pub/sub pattern: every agent's screen pops (ids hold no ':')


def event(event_id: str) -> str:
    """Hash: an outbound event for the messaging platform (JSON body, delivery state, attempts, last error)."""
    return f"{PREFIX}:event:{event_id}"


def thread_events(thread_id: str) -> str:
    """Sorted set: a thread's outbound event ids scored by creation (epoch ms)."""
    return f"{PREFIX}:thread:{thread_id}:events"


UNDELIVERED_EVENTS = f"{PREFIX}:events:undeliverable"  # sorted set of event ids that exhausted their retries
PENDING_EVENTS = f"{PREFIX}:events:pending"  # sorted set: events to send, not delivered nor given up yet (ms)


def callback(callback_id: str) -> str:
    """Hash: a callback (doc JSON, state, version for compare-and-set)."""
    return f"{PREFIX}:callback:{callback_id}"


def thread_live_callback(thread_id: str) -> str:
    """String: the id of the thread's one live callback."""
    return f"{PREFIX}:thread:{thread_id}:callback"


def thread_callbacks(thread_id: str) -> str:
    """Sorted set: every callback of a thread scored by creation (epoch ms)."""
    return f"{PREFIX}:thread:{thread_id}:callbacks"


def call_callback(call_sid: str) -> str:
    """String: the callback and attempt a placed call belongs to ("id:attempt")."""
    return f"{PREFIX}:callcb:{call_sid}"


DIAL_SLOT = f"{PREFIX}:dialslot"  # string: the next free slot (epoch us) of the outbound calls-per-second limit
DUE_CALLBACKS = f"{PREFIX}:callbacks:due"  # sorted set: scheduled callbacks by due time (epoch s)
DIALING_CALLBACKS = f"{PREFIX}:callbacks:dialing"  # sorted set: attempts under way, by claim (or next check) time
CLOCK_LEASE = f"{PREFIX}:clock:lease"  # string with a TTL: the clock process that dispatches and sweeps now
CLOCK_STATUS = f"{PREFIX}:clock:status"  # hash: the lease holder's last dispatch and sweep (epoch s)


def worker_alive(worker_name: str) -> str:
    """String with a short TTL: present while the RQ worker of that name is alive (its heartbeat renews it)."""
    return f"{PREFIX}:worker:{worker_name}:alive"


def agent_password(agent_id: str) -> str:
    """String: the argon2 hash of an agent's desk password."""
    return f"{PREFIX}:agent:{agent_id}:password"


def login_attempts(agent_id: str) -> str:
    """String counter with a TTL: sign-in attempts for an agent id since the window opened (reset on success)."""
    return f"{PREFIX}:agent:{agent_id}:login-attempts"


def login_address_failures(address: str) -> str:
    """String counter with a TTL: failed desk sign-ins from one client address, whatever the agent id."""
    return f"{PREFIX}:login-address:{address}:failures"


def login_lock(agent_id: str) -> str:
    """String with a TTL: present while sign-in is locked for an agent id."""
    return f"{PREFIX}:agent:{agent_id}:login-lock"


def desk_session(session_id: str) -> str:
    """String with a TTL: the agent a signed-in desk session belongs to."""
    return f"{PREFIX}:desksession:{session_id}"


def agent_desk_sessions(agent_id: str) -> str:
    """Set: the ids of an agent's desk sessions, so a password change can end them all."""
    return f"{PREFIX}:agent:{agent_id}:desksessions"


def report_day(number: str, day: str) -> str:
    """Hash with a TTL: one support number's counters for one day of its own zone (YYYY-MM-DD): field -> count."""
    return f"{PREFIX}:report:{number}:{day}"


def reported(subject: str) -> str:
    """Set with a TTL: what has been counted for a call or callback already, so a repeated webhook counts once."""
    return f"{PREFIX}:reported:{subject}"
