"""What an agent may see: the threads and calls of the numbers they work, nothing else."""

from __future__ import annotations

from flask import current_app

from callbacks.store import CallbackStore
from directory.store import NumberStore
from voice.calls import CallStore


def numbers_of(agent_id: str) -> set[str]:
    """The support numbers that list the agent."""
    numbers: NumberStore = current_app.extensions["threadline.numbers"]
    return {n.number for n in numbers.all() if agent_id in n.agents}


def thread_numbers(thread_id: str) -> set[str]:
    """The support numbers a thread has met: through its calls and its callbacks."""
    calls: CallStore = current_app.extensions["threadline.calls"]
    callbacks: CallbackStore = current_app.extensions["threadline.callbacks"]
    return {c.number for c in calls.for_thread(thread_id) if c.number} | {
        c.number for c in callbacks.for_thread(thread_id)}


def can_see_thread(agent_id: str, thread_id: str) -> bool:
    return bool(numbers_of(agent_id) & thread_numbers(thread_id))
