"""What an agent may see: the threads and calls of the numbers they work, nothing else."""

from __future__ import annotations

from callbacks.store import CALLBACKS, CallbackStore
from directory.store import NUMBERS, NumberStore
from voice.calls import CALLS, CallStore


def numbers_of(agent_id: str) -> set[str]:
    """The support numbers that list the agent."""
    numbers: NumberStore = NUMBERS.get()
    return {n.number for n in numbers.all() if agent_id in n.agents}


def thread_numbers(thread_id: str) -> set[str]:
    """The support numbers a thread has met: through its calls and its callbacks."""
    calls: CallStore = CALLS.get()
    callbacks: CallbackStore = CALLBACKS.get()
    return {c.number for c in calls.for_thread(thread_id) if c.number} | {
        c.number for c in callbacks.for_thread(thread_id)}


def can_see_thread(agent_id: str, thread_id: str) -> bool:
    return bool(numbers_of(agent_id) & thread_numbers(thread_id))
