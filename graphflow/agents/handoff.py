"""Handoffs and swarms: agents that pass the conversation to one another.

:func:`handoff_tool` makes a ``transfer_to_<agent>`` tool. Its call returns
``Command(graph=Command.PARENT, goto=<agent>, update={"active_agent": <agent>, ...})``: the
calling agent's graph ends and the graph it is a node of goes on with the target agent, which
sees the whole conversation (the call and its ``ToolMessage`` included, so the history stays
valid for every provider). No special machinery: the same ``Command`` users can return by hand.

:func:`create_swarm` puts agents side by side::

    START --(active_agent)--> alice <--handoff--> bob --> ...

The agent that answered last stays active for the thread: the next message goes to it
(``active_agent`` is part of the swarm's checkpointed state). When one reply asks for two
handoffs, the first in the reply wins and the second gets an error ``ToolMessage``
(:class:`~graphflow.agents.ToolNode`'s one-goto-per-reply rule), so two agents are never active.
A ping-pong of handoffs is bounded by the run's ``recursion_limit``, whose error names the agents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, TypedDict

from ..constants import END, START
from ..engine.compiled import CompiledGraph
from ..errors import GraphValidationError
from ..graph.state_graph import StateGraph
from ..messages import AnyMessage, ToolMessage, add_messages
from ..types import Command
from ._team import check_name

__all__ = ["SwarmState", "create_swarm", "handoff_tool", "reachable_agents"]


class SwarmState(TypedDict):
    """The conversation, and the agent that answers the next message."""

    messages: Annotated[list[AnyMessage], add_messages]
    active_agent: str | None


def _target_name(target: Any) -> str:
    if isinstance(target, CompiledGraph):
        return check_name(target.name, "handoff target")
    return check_name(target, "handoff target")


def handoff_tool(target: Any, description: str | None = None, *, name: str | None = None,
                 graph: str | None = Command.PARENT, active_key: str | None = "active_agent"
                 ) -> Any:
    """A tool that hands the conversation over to ``target`` (an agent, or its name).

    Args:
        target: the agent to hand over to (its node name in the swarm or supervisor graph).
        description: what the model reads to decide (default: names the target and, for an
            agent, its ``description``).
        name: the tool's name (default ``transfer_to_<target>``).
        graph: ``Command.PARENT`` (default: the caller is an agent graph inside a swarm) or
            None (the tool runs in the graph that has the target, as in a supervisor).
        active_key: the state key that remembers the active agent (None: none).

    The model may pass a ``note`` for the next agent; it is the text of the call's
    ``ToolMessage`` (``"Transferred to bob. Note: ..."``).
    """
    from ..tools import Tool

    target_name = _target_name(target)
    text = description or (f"Hand the conversation over to {target_name}"
                           + (f" ({target.description})"
                              if getattr(target, "description", "") else "")
                           + ". Call it alone, when that agent should answer instead of you.")

    def transfer(note: str = "") -> Command:
        """Hand over.

        Args:
            note: anything the next agent should know (optional).
        """
        said = f"Transferred to {target_name}." + (f" Note: {note}" if note else "")
        update: dict[str, Any] = {"messages": [ToolMessage(content=said, tool_call_id="")]}
        if active_key is not None:
            update[active_key] = target_name
        return Command(graph=graph, goto=target_name, update=update)

    tool = Tool(transfer, name=name or f"transfer_to_{target_name}", description=text)
    tool.handoff_target = target_name  # type: ignore[attr-defined]
    tool.handoff_agent = target if isinstance(target, CompiledGraph) else None  # type: ignore[attr-defined]
    return tool


def as_handoff_tool(item: Any) -> Any:
    """A handoff tool from an agent, a name, or a :func:`handoff_tool` (kept as it is)."""
    if getattr(item, "handoff_target", None) is not None:
        return item
    if isinstance(item, (CompiledGraph, str)):
        return handoff_tool(item)
    raise TypeError(f"handoffs: expected agents, agent names or handoff_tool(...)s, got "
                    f"{item!r:.80}")


def reachable_agents(agent: Any) -> list[Any]:
    """``agent`` and every agent its handoffs reach (through handoff tools made from agents),
    first-found order."""
    found: dict[str, Any] = {}
    todo = [agent]
    while todo:
        a = todo.pop(0)
        if a.name in found:
            if found[a.name] is not a:
                raise GraphValidationError(
                    f"two different agents are named {a.name!r} among those reachable from "
                    f"{agent.name!r} through handoffs; agent names must be unique")
            continue
        found[a.name] = a
        for h in getattr(a, "handoffs", ()):
            target = getattr(h, "handoff_agent", None)
            if target is None:
                raise GraphValidationError(
                    f"agent {a.name!r} hands off to {h.handoff_target!r} by name only; to run "
                    f"{agent.name!r} on its own, give it the agent itself (handoffs=[agent]), "
                    f"or put the agents in create_swarm([...])")
            todo.append(target)
    return list(found.values())


def _handoffs_of(graph: Any) -> list[str]:
    return [h.handoff_target for h in getattr(graph, "handoffs", ())]


def create_swarm(agents: Sequence[Any], *, default: str | None = None, name: str = "swarm",
                 checkpointer: Any = None, state_schema: type | None = None) -> CompiledGraph:
    """A graph where agents hand the conversation over to each other; the last one to answer
    stays active for the next message of the thread.

    Args:
        agents: :class:`~graphflow.agents.Agent` s (or compiled graphs over ``messages``) with
            handoff tools to each other; names must be unique.
        default: the agent that answers when none is active yet (default: the first).
        name: the compiled graph's name.
        checkpointer: to remember the conversation and the active agent per thread.
        state_schema: a schema extending :class:`SwarmState`.

    Raises :class:`~graphflow.GraphValidationError` for duplicate names, an unknown default,
    or a handoff to an agent that is not in the swarm (naming the agent and the target).
    """
    agents = list(agents)
    if not agents:
        raise GraphValidationError("create_swarm needs at least one agent")
    names = [check_name(a.name, "agent") for a in agents]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise GraphValidationError(f"two agents of swarm {name!r} are named {dupes[0]!r}")
    default = default or names[0]
    if default not in names:
        raise GraphValidationError(
            f"swarm {name!r}: default agent {default!r} is not one of its agents ({names})")
    for a in agents:
        for target in _handoffs_of(a):
            if target not in names:
                raise GraphValidationError(
                    f"swarm {name!r}: agent {a.name!r} hands off to {target!r}, which is not "
                    f"in the swarm (agents: {', '.join(names)}); add it or remove the handoff")
    g = StateGraph(state_schema or SwarmState)
    for a in agents:
        g.add_node(a.name, a, destinations=[*dict.fromkeys(_handoffs_of(a)), END])

    def active(state: Any) -> str:
        current = state.get("active_agent") if isinstance(state, dict) else getattr(
            state, "active_agent", None)
        return current if current in names else default

    g.add_conditional_edges(START, active, names)
    compiled = g.compile(checkpointer, name=name)
    compiled.team_depth = 1 + max(getattr(a, "team_depth", 0) for a in agents)  # type: ignore[attr-defined]
    return compiled


