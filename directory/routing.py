"""Who takes a call: the agent of the thread when available, else the number's first available agent."""

from __future__ import annotations

from context.schemas import Author, Thread
from directory.models import Agent, Number
from directory.store import AgentStore


def choose_agent(number: Number, thread: Thread | None, agents: AgentStore) -> Agent | None:
    """The agent who last wrote in the thread when available, else the number's first available agent."""
    available = [a for a in agents.many(number.agents) if a and a.takes_calls]
    if thread:
        for message in reversed(thread.messages):
            if message.author == Author.agent and message.name:
                for agent in available:
                    if message.name in (agent.id, agent.name):
                        return agent
                break
    return available[0] if available else None
