"""What the orchestrators share: team members, asking a member, and usage per agent.

A *member* is a compiled graph whose state has ``messages`` (an :class:`Agent`, a prebuilt
agent, another orchestrator, any graph of yours). Orchestrator nodes ask a member by invoking
its graph from inside the node, which makes it a subgraph of that node's task (checkpointed,
resumed, journaled, counted in the run's usage and budget, its interrupts pausing the run) while
the member sees only the messages the node gives it and the orchestrator keeps only what the node
takes back. Such nodes say which graph they run (``graphflow_graph``), so diagrams draw them as
clusters with the member's nodes inside.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..engine.compiled import CompiledGraph
from ..errors import GraphValidationError
from ..messages import AIMessage, HumanMessage, Message, Usage

__all__ = ["Member", "Reply", "UsageTotals", "add_usage", "as_member", "as_members",
           "check_name", "members_text", "total_usage", "usage_of"]

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

UsageTotals = dict[str, dict[str, float]]
"""Usage per agent: ``{agent: {"input_tokens", "output_tokens", "cost", "calls"}}``; a nested
orchestrator's agents appear as ``"outer/inner"``."""


def check_name(name: Any, what: str) -> str:
    """``name`` if it can name an agent (a node, a tool ``transfer_to_<name>``, a message)."""
    if not isinstance(name, str) or not NAME.match(name):
        raise GraphValidationError(
            f"{what} name {name!r} cannot be used: agent names are 1 to 64 letters, digits, "
            f"'_' or '-' (they name nodes, tools like transfer_to_<name>, and messages)")
    return name


def add_usage(left: UsageTotals | None, right: UsageTotals | None) -> UsageTotals:
    """Reducer of usage per agent: sums the numbers of the same agent."""
    out = {k: dict(v) for k, v in (left or {}).items()}
    for agent, numbers in (right or {}).items():
        mine = out.setdefault(agent, {})
        for key, value in numbers.items():
            mine[key] = mine.get(key, 0) + value
    return out


def total_usage(usage: UsageTotals | None) -> dict[str, float]:
    """The sum over all agents of :data:`UsageTotals`."""
    total: dict[str, float] = {"input_tokens": 0, "output_tokens": 0, "cost": 0.0, "calls": 0}
    for numbers in (usage or {}).values():
        for key, value in numbers.items():
            total[key] = total.get(key, 0) + value
    return total


def usage_of(messages: Iterable[Any], model: Any = None) -> dict[str, float]:
    """Tokens, cost (with ``model.cost``) and calls of the AI messages among ``messages``."""
    inp = out = calls = 0
    for m in messages:
        u = getattr(m, "usage", None)
        if u is not None and isinstance(m, AIMessage):
            inp += u.input_tokens
            out += u.output_tokens
            calls += 1
    cost = 0.0
    if calls and getattr(model, "price", None) is not None:
        cost = model.cost(Usage(input_tokens=inp, output_tokens=out))
    return {"input_tokens": inp, "output_tokens": out, "cost": cost, "calls": calls}


@dataclass
class Reply:
    """What a member answered.

    Attributes:
        messages: the messages it added to the conversation it was given.
        text: the text of its last message.
        value: its structured output (``AIMessage.parsed``), or None.
        usage: usage per agent: the member's own calls, plus a nested orchestrator's details.
        state: its final state.
    """

    messages: list[Message]
    text: str
    value: Any
    usage: UsageTotals
    state: Any = field(repr=False, default=None)


class Member:
    """A compiled graph with ``messages`` that can take part in a team.

    Attributes:
        name: its name in the team (a node name).
        graph: the compiled graph.
        description: what it does (shown to managers, supervisors and selectors).
        model: its model if known (for the cost in usage).
        depth: 0 for an agent; for an orchestrator, 1 + its deepest member's (the levels of
            orchestrators it stacks).
    """

    def __init__(self, name: str, graph: CompiledGraph, description: str = "",
                 model: Any = None) -> None:
        self.name = check_name(name, "member")
        if "messages" not in graph.schema.keys:
            raise GraphValidationError(
                f"member {name!r}: its graph's state has no 'messages' key (it has "
                f"{sorted(graph.schema.keys)}); a team member takes and returns messages")
        self.graph = graph
        self.description = description or getattr(graph, "description", "") or ""
        self.model = model if model is not None else getattr(graph, "model", None)
        self.depth = int(getattr(graph, "team_depth", 0))

    def __repr__(self) -> str:
        return f"Member({self.name!r})"

    def ask(self, messages: Sequence[Any]) -> Reply:
        """Invoke the member on ``messages`` (inside a node: as a subgraph of its task)."""
        return self._reply(list(messages), self.graph.invoke({"messages": list(messages)}))

    async def aask(self, messages: Sequence[Any]) -> Reply:
        """Async :meth:`ask`."""
        return self._reply(list(messages),
                           await self.graph.ainvoke({"messages": list(messages)}))

    def _reply(self, given: list[Any], state: Any) -> Reply:
        final = state["messages"] if isinstance(state, Mapping) else state.messages
        seen = {getattr(m, "id", None) for m in given}
        new = [m for m in final if m.id not in seen]
        last = final[-1] if final else None
        nested = state.get("usage") if isinstance(state, Mapping) else None
        if isinstance(nested, Mapping):  # an orchestrator counts its agents: under its name
            usage: UsageTotals = {f"{self.name}/{k}": dict(v) for k, v in nested.items()}
        else:
            usage = {self.name: usage_of(new, self.model)}
        return Reply(new, last.text if last is not None else "",
                     getattr(last, "parsed", None), usage, state)


def as_member(item: Any, what: str = "member") -> Member:
    """A :class:`Member` from an Agent, a compiled graph, or a ``(name, graph)`` pair."""
    if isinstance(item, Member):
        return item
    if isinstance(item, tuple) and len(item) == 2:
        name, graph = item
        if not isinstance(graph, CompiledGraph):
            raise TypeError(f"{what} {name!r}: expected a compiled graph, got {graph!r:.80}")
        return Member(name, graph)
    if isinstance(item, CompiledGraph):
        return Member(item.name, item)
    raise TypeError(f"{what}: expected an Agent or a compiled graph (or a (name, graph) pair), "
                    f"got {item!r:.80}")


def as_members(items: Iterable[Any] | Mapping[str, Any], what: str = "member") -> list[Member]:
    """Members from a list (or a name -> graph mapping); names must be unique."""
    if isinstance(items, Mapping):
        items = list(items.items())
    members = [as_member(x, what) for x in items]
    if not members:
        raise GraphValidationError(f"a team needs at least one {what}")
    seen: dict[str, int] = {}
    for m in members:
        seen[m.name] = seen.get(m.name, 0) + 1
    dupes = sorted(n for n, c in seen.items() if c > 1)
    if dupes:
        raise GraphValidationError(
            f"two {what}s are named {dupes[0]!r}; names must be unique within a team (pass "
            f"(name, graph) pairs to rename)")
    return members


def members_text(members: Sequence[Member]) -> str:
    """One line per member: ``- name: description``."""
    return "\n".join(f"- {m.name}: {m.description or 'a team member'}" for m in members)


def team_depth(members: Sequence[Member]) -> int:
    return 1 + max((m.depth for m in members), default=0)


def check_depth(name: str, members: Sequence[Member], max_depth: int) -> int:
    """The depth of an orchestrator over ``members``; an error beyond ``max_depth``."""
    depth = team_depth(members)
    if depth > max_depth:
        deepest = max(members, key=lambda m: m.depth)
        raise GraphValidationError(
            f"orchestrator {name!r} nests {depth} levels deep (through member "
            f"{deepest.name!r}), more than max_depth={max_depth}; flatten the team or raise "
            f"max_depth")
    return depth


def human(text: str) -> HumanMessage:
    return HumanMessage(content=text)


def described(fn: Callable[..., Any], graph: CompiledGraph, name: str) -> Callable[..., Any]:
    """Mark a node function as running ``graph`` inside (drawn as a cluster)."""
    fn.graphflow_graph = graph  # type: ignore[attr-defined]
    fn.graphflow_kind = "subgraph"  # type: ignore[attr-defined]
    fn.__name__ = name
    return fn
