""":class:`Agent`: a model with instructions, tools and handoffs — a compiled graph of its own.

::

    START -> agent --(tool calls?)--> tools -> agent ...
                   \\------------------> END

``Agent`` is a :class:`~graphflow.engine.compiled.CompiledGraph`: add it as a node of any graph
(it reads and appends ``messages``), give it to an orchestrator, or run it directly with
:meth:`Agent.run` / :meth:`Agent.arun` (an :class:`AgentResult`) and :meth:`Agent.stream` /
:meth:`Agent.astream` (typed :class:`AgentEvent` s). An agent with ``handoffs`` runs, on its own,
as the swarm of itself and every agent its handoffs reach (see :func:`create_swarm`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from ..engine.compiled import CompiledGraph
from ..engine.interrupts import SCOPE
from ..graph.state_graph import StateGraph
from ..messages import AIMessage, AnyMessage, HumanMessage, Message, ToolCall
from ..messages import ToolMessage as _ToolMessage
from ._team import check_name, usage_of
from .function_calling import FunctionCallingNode
from .state import AgentState, as_tools, limit_message, messages_of, model_calls_this_turn
from .tool_node import ErrorHandler, ToolNode, tools_condition

__all__ = [
    "Agent",
    "AgentEvent",
    "AgentResult",
    "ErrorEvent",
    "HandoffEvent",
    "Memory",
    "ResponseEvent",
    "ThinkingEvent",
    "ToolCallEvent",
    "ToolResultEvent",
]


@runtime_checkable
class Memory(Protocol):
    """What an agent's ``memory=`` must provide: the messages the model sees this turn.

    ``prepare(messages)`` gets the whole conversation and returns what to send (trimmed,
    summarized, with recalled facts...). It must keep the history valid for the providers
    (every tool call answered). An ``async def aprepare(messages)`` is used instead when the
    agent runs async and the object has one.
    """

    def prepare(self, messages: list[AnyMessage]) -> list[AnyMessage]: ...


# -- events --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AgentEvent:
    """Base of the events :meth:`Agent.stream` yields.

    Attributes:
        agent: the agent it is about.
        path: the subgraph path it came from (``()``: the top graph).
        usage: the run's usage so far (``input_tokens``, ``output_tokens``, ``cost``).
    """

    type: ClassVar[str] = "event"
    agent: str
    path: tuple[str, ...] = ()
    usage: dict[str, float] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ThinkingEvent(AgentEvent):
    """Text the model wrote alongside tool calls (what it is about to do)."""

    type: ClassVar[str] = "thinking"
    text: str = ""


@dataclass(frozen=True)
class ToolCallEvent(AgentEvent):
    """The model asked for a tool call."""

    type: ClassVar[str] = "tool_call"
    call: ToolCall | None = None


@dataclass(frozen=True)
class ToolResultEvent(AgentEvent):
    """A tool call's result (``message.status == "error"`` for a failed call)."""

    type: ClassVar[str] = "tool_result"
    message: _ToolMessage | None = None


@dataclass(frozen=True)
class HandoffEvent(AgentEvent):
    """``agent`` handed the conversation over to ``target``."""

    type: ClassVar[str] = "handoff"
    target: str = ""


@dataclass(frozen=True)
class ResponseEvent(AgentEvent):
    """The final answer (the last event of a run that ended well)."""

    type: ClassVar[str] = "response"
    text: str = ""
    output: Any = None
    result: AgentResult | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ErrorEvent(AgentEvent):
    """The run failed; the stream raises ``error`` right after this event."""

    type: ClassVar[str] = "error"
    error: BaseException | None = None


@dataclass
class AgentResult:
    """What :meth:`Agent.run` returns.

    Attributes:
        output: the structured output (an ``output_type`` instance) or else the final text.
        text: the final message's text.
        messages: the whole conversation after the run.
        agent: the agent that gave the final answer (another one after a handoff).
        usage: the run's usage (``input_tokens``, ``output_tokens``, ``cost``).
        state: the final state of the graph.
    """

    output: Any
    text: str
    messages: list[AnyMessage]
    agent: str
    usage: dict[str, float]
    state: Any = field(repr=False, default=None)


# -- the model step ------------------------------------------------------------------------------

_FORMAT = ("Give your final answer again as one JSON object that fits the required schema, "
           "and nothing else.")


class AgentNode(FunctionCallingNode):
    """The model step of an :class:`Agent`: its instructions and memory, its name on its replies,
    and its ``output_type`` (a final answer that does not parse is asked for once more with the
    model's structured output)."""

    graphflow_kind = "agent"

    def __init__(self, agent: str, model: Any, tools: Sequence[Any], *, system: str | None,
                 memory: Memory | None, max_iterations: int | None,
                 output_type: type | None) -> None:
        super().__init__(model, tools, system=system or None, max_iterations=max_iterations)
        self.agent = agent
        self.memory = memory
        self.output_type = output_type

    def _limited(self, history: list[Message]) -> AIMessage | None:
        limit = self.max_iterations
        if limit is not None and model_calls_this_turn(history) >= limit:
            return self._named(limit_message(limit))
        return None

    def _named(self, msg: AIMessage) -> AIMessage:
        if msg.name != self.agent:  # the model built this reply for this call: ours to fill
            msg.name = self.agent
        return msg

    def _with_system(self, history: list[Any]) -> list[Any]:
        return [self.system, *history] if self.system is not None else list(history)

    def _structured(self) -> Any:
        # without tools the model answers in the format directly; with tools, at the end
        return self.output_type if self.output_type is not None and not self.tools else None

    def _parsed(self, msg: AIMessage) -> AIMessage | None:
        """``msg`` with its structured output, None if it needs asking again."""
        if self.output_type is None or msg.tool_calls:
            return msg
        if msg.parsed is not None:
            return msg
        from ..models.base import parse_structured

        try:
            return msg.model_copy(update={"parsed": parse_structured(msg.content,
                                                                     self.output_type)})
        except ValueError:
            return None

    def __call__(self, state: Any) -> dict[str, Any]:
        history = messages_of(state, self.messages_key)
        done = self._limited(history)
        if done is not None:
            return {self.messages_key: [done]}
        seen = self.memory.prepare(list(history)) if self.memory is not None else history
        prompt = self._with_system(seen)
        answer = self.model.invoke(prompt, tools=self.tools or None,
                                   tool_choice=self.tool_choice,
                                   response_format=self._structured())
        final = self._parsed(answer)
        if final is None:  # ask for the format once, with the model's structured output
            final = self.model.invoke([*prompt, answer, HumanMessage(content=_FORMAT)],
                                      response_format=self.output_type)
        return {self.messages_key: [self._named(final)]}

    invoke = __call__

    async def ainvoke(self, state: Any) -> dict[str, Any]:  # type: ignore[override]
        """Async twin of calling the node (``aprepare`` and ``model.ainvoke``)."""
        history = messages_of(state, self.messages_key)
        done = self._limited(history)
        if done is not None:
            return {self.messages_key: [done]}
        memory = self.memory
        if memory is None:
            seen = history
        elif hasattr(memory, "aprepare"):
            seen = await memory.aprepare(list(history))  # type: ignore[attr-defined]
        else:
            seen = memory.prepare(list(history))
        prompt = self._with_system(seen)
        answer = await self.model.ainvoke(prompt, tools=self.tools or None,
                                          tool_choice=self.tool_choice,
                                          response_format=self._structured())
        final = self._parsed(answer)
        if final is None:
            final = await self.model.ainvoke([*prompt, answer, HumanMessage(content=_FORMAT)],
                                             response_format=self.output_type)
        return {self.messages_key: [self._named(final)]}


class AsyncAgentNode(AgentNode):
    """An :class:`AgentNode` whose memory has ``aprepare``: an async node."""

    async def __call__(self, state: Any) -> dict[str, Any]:  # type: ignore[override]
        return await self.ainvoke(state)


# -- the agent -----------------------------------------------------------------------------------

def _task_messages(task: Any) -> dict[str, Any]:
    """The input of a run: a request (str), messages, or a dict state."""
    if isinstance(task, dict):
        return task
    if isinstance(task, str):
        return {"messages": [HumanMessage(content=task)]}
    if isinstance(task, Message):
        return {"messages": [task]}
    return {"messages": list(task)}


class Agent(CompiledGraph):
    """A chat model with instructions, tools and handoffs, compiled into a graph.

    Args:
        name: its name: the node name when added to a graph, the tool name of ``as_tool``,
            ``transfer_to_<name>`` for handoffs to it, and the ``name`` of its messages
            (1 to 64 letters, digits, ``_`` or ``-``).
        model: a :class:`~graphflow.models.ChatModel`.
        instructions: the system prompt (not stored in the state).
        tools: ``@tool`` functions, ``Tool`` objects, plain functions, or other agents'
            :meth:`as_tool`.
        handoffs: agents (or names, or :func:`handoff_tool` s) it may hand the conversation
            over to; each becomes a ``transfer_to_<name>`` tool.
        memory: an object with ``prepare(messages) -> messages`` (see :class:`Memory`): what
            the model sees each turn. The state keeps the whole conversation.
        max_iterations: the most model calls per request; then it answers that it stopped.
        output_type: a pydantic model: the final answer's structured output
            (``AIMessage.parsed``, :attr:`AgentResult.output`).
        description: what it does, for the agents and managers that may call it.
        checkpointer: to run it on threads (and pause on ``confirm=True`` tools).
        handle_tool_errors: ``ToolNode(handle_errors=...)``.
        tool_timeout: ``ToolNode(timeout=...)``.

    Example::

        researcher = Agent("researcher", model, "Find facts.", tools=[search])
        print(researcher.run("Who designed the Eiffel Tower?").output)
    """

    def __init__(self, name: str, model: Any, instructions: str = "", *,
                 tools: Iterable[Any] = (), handoffs: Iterable[Any] = (),
                 memory: Memory | None = None, max_iterations: int | None = 25,
                 output_type: type | None = None, description: str = "",
                 checkpointer: Any = None, handle_tool_errors: ErrorHandler = True,
                 tool_timeout: float | None = None) -> None:
        from .handoff import as_handoff_tool

        check_name(name, "agent")
        if memory is not None and not callable(getattr(memory, "prepare", None)):
            raise TypeError(f"agent {name!r}: memory must have prepare(messages) -> messages, "
                            f"got {memory!r:.80}")
        if output_type is not None:
            if not hasattr(output_type, "model_validate_json"):
                raise TypeError(f"agent {name!r}: output_type must be a pydantic model class, "
                                f"got {output_type!r:.80}")
            from ..checkpoint.serde import register_schema_types

            register_schema_types(output_type)  # its instances are stored in messages
        self.model = model
        self.instructions = instructions
        self.description = description
        self.memory = memory
        self.output_type = output_type
        self.handoffs = [as_handoff_tool(h) for h in handoffs]
        self.tools = as_tools([*tools, *self.handoffs])
        node_cls = AsyncAgentNode if hasattr(memory, "aprepare") else AgentNode
        node = node_cls(name, model, self.tools, system=instructions, memory=memory,
                        max_iterations=max_iterations, output_type=output_type)
        g = StateGraph(AgentState)
        g.add_node("agent", node)
        g.add_edge("__start__", "agent")
        if self.tools:
            g.add_node("tools", ToolNode(self.tools, handle_errors=handle_tool_errors,
                                         timeout=tool_timeout))
            g.add_conditional_edges("agent", tools_condition)
            g.add_edge("tools", "agent")
        else:
            g.add_edge("agent", "__end__")
        from ..graph.validate import validate

        super().__init__(g, validate(g), checkpointer=checkpointer, name=name)
        self._team: CompiledGraph | None = None

    def __repr__(self) -> str:
        return f"<Agent {self.name!r}: {len(self.tools)} tools>"

    def with_checkpointer(self, checkpointer: Any) -> Agent:
        """The same agent on another checkpointer."""
        clone = copy.copy(self)
        clone.checkpointer = checkpointer
        clone._nx = self._nx.copy()
        clone._team = None
        return clone

    # -- as a team -----------------------------------------------------------------------------

    def team(self) -> CompiledGraph:
        """The graph :meth:`run` uses: this agent, or — with handoffs — the swarm of this agent
        and every agent its handoffs reach (this one answering first)."""
        if not self.handoffs:
            return self
        if self._team is None:
            from .handoff import create_swarm, reachable_agents

            self._team = create_swarm(reachable_agents(self), default=self.name,
                                      name=f"{self.name}_team", checkpointer=self.checkpointer)
        return self._team

    # -- running -------------------------------------------------------------------------------

    def run(self, task: Any, *, thread: str | None = None, context: Any = None,
            recursion_limit: int | None = None, token_budget: int | None = None,
            wait: bool | float = False) -> AgentResult:
        """Run on ``task`` (a request, messages, or a state dict); returns an
        :class:`AgentResult`. Inside a node of another graph it runs as a subgraph of it."""
        graph = self.team()
        inp = _task_messages(task)
        if thread is None and SCOPE.get(None) is not None:  # inside a node: a subgraph run
            state = graph.invoke(inp, context=context, recursion_limit=recursion_limit)
            return self._result(state, None)
        run = graph._run(inp, None, "run", thread=thread, context=context,
                         recursion_limit=recursion_limit, token_budget=token_budget, wait=wait)
        from ..engine.sync_driver import run_sync

        if graph._has_async:
            from ..engine.compiled import _run_blocking

            return _run_blocking(lambda: self._arun_run(run))
        for _ in run_sync(run):
            pass
        return self._result(run.result(), run)

    async def arun(self, task: Any, *, thread: str | None = None, context: Any = None,
                   recursion_limit: int | None = None, token_budget: int | None = None,
                   wait: bool | float = False) -> AgentResult:
        """Async :meth:`run`."""
        graph = self.team()
        inp = _task_messages(task)
        if thread is None and SCOPE.get(None) is not None:
            state = await graph.ainvoke(inp, context=context, recursion_limit=recursion_limit)
            return self._result(state, None)
        return await self._arun_run(graph._run(
            inp, None, "arun", thread=thread, context=context, recursion_limit=recursion_limit,
            token_budget=token_budget, wait=wait))

    async def _arun_run(self, run: Any) -> AgentResult:
        from ..engine.async_driver import run_async

        async for _ in run_async(run):
            pass
        return self._result(run.result(), run)

    def _result(self, state: Any, run: Any) -> AgentResult:
        messages = list(state["messages"])
        last = messages[-1] if messages else None
        agent = (last.name if isinstance(last, AIMessage) and last.name else self.name)
        if run is not None:
            usage = dict(run.usage)
        else:  # inside a node: the run's totals are the caller's; these are this agent's
            new = usage_of(messages, self.model)
            usage = {k: new[k] for k in ("input_tokens", "output_tokens", "cost")}
        text = last.text if last is not None else ""
        parsed = getattr(last, "parsed", None)
        return AgentResult(parsed if parsed is not None else text, text, messages, agent,
                           usage, state)

    def stream(self, task: Any, *, mode: Any = None, thread: str | None = None,  # type: ignore[override]
               context: Any = None, recursion_limit: int | None = None,
               checkpoint: str | None = None, token_budget: int | None = None,
               wait: bool | float = False, subgraphs: bool = False) -> Iterator[Any]:
        """Run on ``task`` and yield typed :class:`AgentEvent` s: ``thinking``, ``tool_call``,
        ``tool_result``, ``handoff``, then ``response`` (with the result), or ``error`` (then the
        exception is raised). Each carries the agent, the subgraph path and the usage so far.

        With ``mode=`` (``"updates"``, ``"values"``, ...) it is the graph's own
        :meth:`CompiledGraph.stream` instead.
        """
        if mode is not None:
            return super().stream(task, mode=mode, thread=thread, context=context,
                                  recursion_limit=recursion_limit, checkpoint=checkpoint,
                                  token_budget=token_budget, wait=wait, subgraphs=subgraphs)
        graph = self.team()
        run = graph._run(_task_messages(task), None, "stream", thread=thread, context=context,
                         recursion_limit=recursion_limit, mode="updates",
                         checkpoint=checkpoint, token_budget=token_budget, wait=wait,
                         subgraphs=True)
        return self._events(graph, run)

    def astream(self, task: Any, *, mode: Any = None, thread: str | None = None,  # type: ignore[override]
                context: Any = None, recursion_limit: int | None = None,
                checkpoint: str | None = None, token_budget: int | None = None,
                wait: bool | float = False, subgraphs: bool = False) -> AsyncIterator[Any]:
        """Async :meth:`stream`."""
        if mode is not None:
            return super().astream(task, mode=mode, thread=thread, context=context,
                                   recursion_limit=recursion_limit, checkpoint=checkpoint,
                                   token_budget=token_budget, wait=wait, subgraphs=subgraphs)
        graph = self.team()
        run = graph._run(_task_messages(task), None, "astream", thread=thread,
                         context=context, recursion_limit=recursion_limit, mode="updates",
                         checkpoint=checkpoint, token_budget=token_budget, wait=wait,
                         subgraphs=True)
        return self._aevents(run)

    def _events(self, graph: CompiledGraph, run: Any) -> Iterator[AgentEvent]:
        from ..engine.async_driver import run_async
        from ..engine.compiled import _iter_blocking
        from ..engine.sync_driver import run_sync

        source = _iter_blocking(lambda: run_async(run)) if graph._has_async else run_sync(run)
        reader = _EventReader(self, run)
        try:
            for path, update in source:
                yield from reader.read(path, update)
        except BaseException as exc:
            yield ErrorEvent(reader.current, (), dict(run.usage), error=exc)
            raise
        yield reader.response()

    async def _aevents(self, run: Any) -> AsyncIterator[AgentEvent]:
        from ..engine.async_driver import run_async

        reader = _EventReader(self, run)
        try:
            async for path, update in run_async(run):
                for event in reader.read(path, update):
                    yield event
        except BaseException as exc:
            yield ErrorEvent(reader.current, (), dict(run.usage), error=exc)
            raise
        yield reader.response()

    # -- as a tool -----------------------------------------------------------------------------

    def as_tool(self, description: str | None = None, *, name: str | None = None) -> Any:
        """This agent as a tool another agent can call with a ``task``; it answers with its
        final text (or its structured output as JSON).

        Called inside a graph, the agent runs as a subgraph of the calling tool node: its model
        calls are journaled (a resumed run does not pay for them again) and counted in the run's
        usage and token budget, and its ``interrupt()`` s pause the whole run.
        """
        from ..tools import Tool

        agent = self

        def ask_agent(task: str) -> str:
            """Ask the agent.

            Args:
                task: what the agent should do, with everything it needs to know.
            """
            result = agent.run(task)
            if isinstance(result.output, str):
                return result.output
            return output_json(result.output)

        text = description or self.description or f"Ask the {self.name} agent to do a task."
        tool = Tool(ask_agent, name=name or self.name, description=text)
        tool.graphflow_agent = self  # type: ignore[attr-defined]
        return tool


class _EventReader:
    """Turns ``(path, {node: update})`` events of an agent's (or team's) run into AgentEvents."""

    def __init__(self, agent: Agent, run: Any) -> None:
        self.agent = agent
        self.run = run
        self.current = agent.name
        self.handoff_tools = {t.name for t in _all_handoffs(agent)}

    def _usage(self) -> dict[str, float]:
        return dict(self.run.usage)

    def read(self, path: tuple[str, ...], update: Any) -> Iterator[AgentEvent]:
        if not isinstance(update, dict):
            return
        team = self.agent.team() is not self.agent
        for node, value in update.items():
            if not isinstance(value, dict):
                continue
            if team and not path:  # a team-level update: a handoff, or an agent's answer
                target = value.get("active_agent")
                if target:
                    yield from self._results(path, node, value, skip_handoffs=True)
                    yield HandoffEvent(node, path, self._usage(), target=target)
                    self.current = target
                continue
            agent = path[-1] if path else self.agent.name
            self.current = agent
            if node == "agent":
                for msg in value.get("messages") or ():
                    if not isinstance(msg, AIMessage) or not msg.tool_calls:
                        continue
                    if msg.content:
                        yield ThinkingEvent(agent, path, self._usage(), text=msg.content)
                    for call in msg.tool_calls:
                        if call.name not in self.handoff_tools:
                            yield ToolCallEvent(agent, path, self._usage(), call=call)
            elif node == "tools":
                yield from self._results(path, agent, value, skip_handoffs=False)

    def _results(self, path: tuple[str, ...], agent: str, value: dict[str, Any], *,
                 skip_handoffs: bool) -> Iterator[AgentEvent]:
        for msg in value.get("messages") or ():
            if isinstance(msg, _ToolMessage) and not (
                    skip_handoffs and msg.name in self.handoff_tools):
                yield ToolResultEvent(agent, path, self._usage(), message=msg)

    def response(self) -> ResponseEvent:
        result = self.agent._result(self.run.result(), self.run)
        return ResponseEvent(result.agent, (), result.usage, text=result.text,
                             output=result.output, result=result)


def _all_handoffs(agent: Agent) -> list[Any]:
    if not agent.handoffs:
        return []
    from .handoff import reachable_agents

    return [h for a in reachable_agents(agent) for h in getattr(a, "handoffs", ())]


def output_json(value: Any) -> str:
    """Structured output as JSON text (pydantic models), else ``str``."""
    if hasattr(value, "model_dump_json"):
        return str(value.model_dump_json())
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
