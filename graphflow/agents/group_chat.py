""":func:`create_group_chat`: agents taking turns on a shared transcript, a selector choosing
who speaks next.

::

    START -> select --> <agent> -> select --> ... --> END

``select`` picks the next speaker — ``"round_robin"`` (in order, after the last speaker), a
function ``fn(messages, names) -> name | None``, or :func:`llm_selector` (a model chooses,
through its structured output) — or ends the chat: after ``max_rounds`` turns since the last
human message, when ``terminate`` says so (a function of the messages, or a word that ends the
chat when the last message contains it), or when the selector returns None / ``END``.

Each speaker sees the transcript from where it sits: its own earlier turns as its messages, the
others' as messages from them (``"bob: ..."``), the humans' as they are. Its reply is appended
to the transcript under its name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Any, Literal, TypedDict

from ..constants import END, START
from ..engine.compiled import CompiledGraph
from ..errors import GraphValidationError
from ..graph.state_graph import StateGraph
from ..messages import AIMessage, AnyMessage, HumanMessage, SystemMessage, add_messages
from ..types import Command
from ._team import (
    Member,
    UsageTotals,
    add_usage,
    as_members,
    check_depth,
    check_name,
    described,
    members_text,
    usage_of,
)

__all__ = ["GroupChatState", "LLMSelector", "create_group_chat", "llm_selector"]


class GroupChatState(TypedDict):
    """The shared transcript, and usage per agent."""

    messages: Annotated[list[AnyMessage], add_messages]
    usage: Annotated[UsageTotals, add_usage]


def turns_since_human(messages: Sequence[Any]) -> list[AIMessage]:
    """The agents' turns after the last human message, oldest first."""
    turns: list[AIMessage] = []
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            break
        if isinstance(m, AIMessage):
            turns.append(m)
    return turns[::-1]


def round_robin(messages: Sequence[Any], names: Sequence[str]) -> str:
    """The speaker after the last one, in order (the first one to begin)."""
    for m in reversed(messages):
        if isinstance(m, AIMessage) and m.name in names:
            return names[(names.index(m.name) + 1) % len(names)]
    return names[0]


class LLMSelector:
    """A selector whose choice a model makes (see :func:`llm_selector`)."""

    def __init__(self, model: Any, instructions: str | None = None,
                 name: str = "selector") -> None:
        self.model = model
        self.instructions = instructions
        self.name = name
        self._formats: dict[tuple[str, ...], type] = {}

    def _format(self, routes: dict[str, str]) -> type:
        """The structured-output model for these routes (made once, registered so that the
        journaled reply can be stored)."""
        key = tuple(routes)
        fmt = self._formats.get(key)
        if fmt is None:
            from ..checkpoint.serde import register_type
            from .router import _decision_model

            fmt = self._formats[key] = _decision_model(routes)
            register_type(fmt, name=f"graphflow.agents.SpeakerChoice[{','.join(key)}]")
        return fmt

    def choose(self, messages: Sequence[Any], members: Sequence[Member]) -> tuple[str, Any]:
        """The next speaker (or ``END``), and the model's reply."""
        from .router import match_route

        routes = {m.name: m.description or "a participant" for m in members}
        routes[END] = "nobody: the conversation has reached its goal"
        decision = self._format(routes)
        intro = self.instructions or ("You lead a group conversation. Choose who speaks next, "
                                      "or end it when it has reached its goal.")
        system = SystemMessage(content=(
            f"{intro}\n\nParticipants:\n{members_text(members)}\n\nAnswer with a JSON object "
            f'{{"route": "<participant name>"}}, or {{"route": "{END}"}} to end.'))
        reply = self.model.invoke([system, *_transcript(messages, None)],
                                  response_format=decision)
        parsed = reply.parsed
        choice = getattr(parsed, "route", None)
        if choice is None and reply.content:
            choice = match_route(reply.content, list(routes))
        if choice is None:
            raise ValueError(f"the selector's answer {reply.content[:80]!r} names none of "
                             f"{list(routes)}")
        return choice, reply


def llm_selector(model: Any, instructions: str | None = None, *,
                 name: str = "selector") -> LLMSelector:
    """A group-chat selector where ``model`` picks the next speaker (or ends the chat)."""
    return LLMSelector(model, instructions, name)


def _transcript(messages: Sequence[Any], speaker: str | None) -> list[Any]:
    """The transcript as ``speaker`` sees it (None: an outside reader)."""
    out: list[Any] = []
    for m in messages:
        if isinstance(m, HumanMessage):
            out.append(m)
        elif isinstance(m, AIMessage) and not m.tool_calls and m.content:
            if speaker is not None and m.name == speaker:
                out.append(m)
            else:
                out.append(HumanMessage(content=f"{m.name or 'assistant'}: {m.content}",
                                        name=m.name))
    return out


def _said(word: str) -> Callable[[list[Any]], bool]:
    def said(messages: list[Any]) -> bool:
        return bool(messages) and word in messages[-1].text

    return said


def _speaker_node(member: Member) -> Any:
    def speak(state: Any) -> dict[str, Any]:
        reply = member.ask(_transcript(state["messages"], member.name))
        return {"messages": [AIMessage(content=reply.text, name=member.name)],
                "usage": reply.usage}

    return described(speak, member.graph, member.name)


def create_group_chat(agents: Iterable[Any], *,
                      select: Literal["round_robin"] | LLMSelector | Callable[..., Any] = (
                          "round_robin"),
                      max_rounds: int = 10,
                      terminate: str | Callable[[list[Any]], bool] | None = None,
                      name: str = "group_chat", max_depth: int = 4,
                      checkpointer: Any = None) -> CompiledGraph:
    """Agents taking turns on a shared transcript.

    Args:
        agents: :class:`~graphflow.agents.Agent` s or compiled graphs over ``messages``.
        select: ``"round_robin"``, a function ``fn(messages, names) -> name | None`` or an
            :func:`llm_selector`.
        max_rounds: the most turns after each human message.
        terminate: ends the chat when ``fn(messages)`` is true, or when the last message
            contains this word.
        name: the compiled graph's name.
        max_depth: the deepest nesting of orchestrators allowed.
        checkpointer: for threads (a conversation that goes on across invocations).
    """
    check_name(name, "group chat")
    if max_rounds < 1:
        raise ValueError(f"max_rounds must be >= 1, got {max_rounds}")
    members = as_members(agents, "agent")
    names = [m.name for m in members]
    if "select" in names:
        raise GraphValidationError(
            f"group chat {name!r}: an agent is named 'select', like its own node; rename it")
    depth = check_depth(name, members, max_depth)
    ends = _said(terminate) if isinstance(terminate, str) else terminate
    if not (select == "round_robin" or callable(select) or isinstance(select, LLMSelector)):
        raise ValueError(f"select must be 'round_robin', a function or an llm_selector(...), "
                         f"got {select!r:.80}")

    def choose(state: Any) -> Any:
        messages = state["messages"]
        turns = turns_since_human(messages)
        if len(turns) >= max_rounds or (turns and ends is not None and ends(messages)):
            return Command(goto=END)
        update: dict[str, Any] = {}
        if select == "round_robin":
            speaker = round_robin(messages, names)
        elif isinstance(select, LLMSelector):
            speaker, reply = select.choose(messages, members)
            update["usage"] = {select.name: usage_of([reply], select.model)}
        else:
            speaker = select(messages, names)
        if speaker is None or speaker == END:
            return Command(goto=END, update=update or None)
        if speaker not in names:
            raise ValueError(f"group chat {name!r}: the selector chose {speaker!r}, who is not "
                             f"a participant ({', '.join(names)})")
        return Command(goto=speaker, update=update or None)

    choose.__annotations__ = {"state": Any, "return": Command[Literal[(*names, END)]]}  # type: ignore[misc]
    choose.graphflow_kind = "router"  # type: ignore[attr-defined]

    g = StateGraph(GroupChatState)
    g.add_node("select", choose)
    for m in members:
        g.add_node(m.name, _speaker_node(m))
        g.add_edge(m.name, "select")
    g.add_edge(START, "select")
    compiled = g.compile(checkpointer, name=name)
    compiled.team_depth = depth  # type: ignore[attr-defined]
    return compiled
