""":func:`create_supervisor`: a supervisor model that routes the conversation to agents by tool
call, and hears back from each.

::

    START -> supervisor --(tool calls?)--> supervisor_tools --(handoff)--> <agent> -> supervisor
                       \\--> END                         \\--(other tools)--> supervisor

The supervisor has a ``transfer_to_<agent>`` tool per agent (with a ``task`` argument: what the
agent should do). Its call is carried out by the ``supervisor_tools`` node, which goes to the
agent's node instead of back to the supervisor. The agent does not see the supervisor's whole
history: it gets the conversation's requests and answers (human messages and AI answers, without
the tool traffic) and the task. Its reply comes back as a message named after it:
``output_mode="last_message"`` (default) adds its final message only, ``"full_history"`` every
message it wrote (its tool calls and results too).

One handover per reply: when the supervisor asks for two agents at once, the first call wins and
the second gets an error ``ToolMessage`` ("only one handover per reply"); the supervisor can
call the other agent next.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal, TypedDict

from ..constants import END, START
from ..engine.compiled import CompiledGraph
from ..errors import GraphValidationError
from ..graph.state_graph import StateGraph
from ..messages import AIMessage, AnyMessage, HumanMessage, ToolMessage, add_messages
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
)
from .agent import AgentNode
from .tool_node import ToolNode, tools_condition

__all__ = ["SupervisorState", "create_supervisor"]

OutputMode = Literal["last_message", "full_history"]


class SupervisorState(TypedDict):
    """The conversation, and usage per agent."""

    messages: Annotated[list[AnyMessage], add_messages]
    usage: Annotated[UsageTotals, add_usage]


def _delegate_tool(member: Member) -> Any:
    """``transfer_to_<member>(task)``: goes to the member's node (the task is read there)."""
    from ..tools import Tool

    name = member.name

    def transfer(task: str = "") -> Command:
        """Hand over to the agent.

        Args:
            task: what the agent should do now, with what it needs to know.
        """
        said = f"Transferred to {name}." + (f" Task: {task}" if task else "")
        return Command(goto=name, update={"messages": [ToolMessage(content=said,
                                                                   tool_call_id="")]})

    text = (f"Hand the work over to the agent {name!r}"
            + (f": {member.description}" if member.description else "") + ".")
    tool = Tool(transfer, name=f"transfer_to_{name}", description=text)
    tool.handoff_target = name  # type: ignore[attr-defined]
    return tool


def agent_view(messages: Sequence[Any], task: str = "") -> list[Any]:
    """What an agent sees: the requests and the answers of the conversation (no tool traffic),
    then its task."""
    seen: list[Any] = []
    for m in messages:
        if isinstance(m, HumanMessage) or (isinstance(m, AIMessage) and not m.tool_calls
                                           and m.content):
            seen.append(m)
    if task:
        seen.append(HumanMessage(content=task))
    return seen


def _task_of(messages: Sequence[Any], agent: str) -> str:
    """The ``task`` of the supervisor's last call of ``transfer_to_<agent>``."""
    for m in reversed(messages):
        if isinstance(m, AIMessage):
            for call in m.tool_calls:
                if call.name == f"transfer_to_{agent}":
                    return str(call.args.get("task") or "")
    return ""


def _agent_node(member: Member, output_mode: OutputMode) -> Any:
    def call_agent(state: Any) -> dict[str, Any]:
        messages = state["messages"]
        reply = member.ask(agent_view(messages, _task_of(messages, member.name)))
        new = reply.messages if output_mode == "full_history" else reply.messages[-1:]
        named = [m.model_copy(update={"name": member.name})
                 if isinstance(m, AIMessage) and not m.name else m for m in new]
        return {"messages": named, "usage": reply.usage}

    return described(call_agent, member.graph, member.name)


def _back(state: Any) -> Literal["supervisor"]:
    return "supervisor"


def create_supervisor(model: Any, agents: Iterable[Any], *, instructions: str | None = None,
                      output_mode: OutputMode = "last_message", tools: Iterable[Any] = (),
                      name: str = "supervisor", max_iterations: int | None = 25,
                      max_depth: int = 4, checkpointer: Any = None) -> CompiledGraph:
    """A supervisor model that hands the conversation to agents by tool call.

    Args:
        model: the supervisor's :class:`~graphflow.models.ChatModel`.
        agents: :class:`~graphflow.agents.Agent` s or compiled graphs over ``messages``
            (another supervisor too), or ``(name, graph)`` pairs.
        instructions: the supervisor's instructions (the agents' list is appended).
        output_mode: ``"last_message"`` or ``"full_history"`` (see the module docstring).
        tools: tools of the supervisor's own.
        name: the compiled graph's name.
        max_iterations: the most supervisor model calls per request.
        max_depth: the deepest nesting of supervisors/orchestrators allowed.
        checkpointer: for threads and interrupts.

    The state is :class:`SupervisorState`; ``usage`` holds usage per agent (the supervisor's
    own calls under its ``name``).
    """
    check_name(name, "supervisor")
    if output_mode not in ("last_message", "full_history"):
        raise GraphValidationError(
            f"create_supervisor: output_mode must be 'last_message' or 'full_history', got "
            f"{output_mode!r}")
    members = as_members(agents, "agent")
    if name in {m.name for m in members}:
        raise GraphValidationError(f"an agent is named {name!r} like the supervisor; rename one")
    depth = check_depth(name, members, max_depth)
    handoffs = [_delegate_tool(m) for m in members]
    intro = (instructions or "You supervise a team of agents. Hand each request to the agent "
             "best placed to handle it, one at a time, and answer the user when the work is "
             "done.")
    system = f"{intro}\n\nAgents (call transfer_to_<name> with the task):\n{members_text(members)}"
    supervisor = AgentNode(name, model, [*tools, *handoffs], system=system, memory=None,
                           max_iterations=max_iterations, output_type=None)

    def supervise(state: Any) -> dict[str, Any]:
        out = supervisor(state)
        reply = out["messages"][-1]
        if reply.usage is not None:
            out["usage"] = {name: {"input_tokens": reply.usage.input_tokens,
                                   "output_tokens": reply.usage.output_tokens,
                                   "cost": model.cost(reply.usage) if hasattr(model, "cost")
                                   else 0.0, "calls": 1}}
        return out

    supervise.graphflow_kind = "agent"  # type: ignore[attr-defined]
    g = StateGraph(SupervisorState)
    g.add_node("supervisor", supervise)
    g.add_node("supervisor_tools", ToolNode(supervisor.tools),
               destinations=[m.name for m in members])
    for m in members:
        g.add_node(m.name, _agent_node(m, output_mode))
        g.add_edge(m.name, "supervisor")
    g.add_edge(START, "supervisor")
    g.add_conditional_edges("supervisor", tools_condition,
                            {"tools": "supervisor_tools", END: END})
    g.add_conditional_edges("supervisor_tools", _back)
    compiled = g.compile(checkpointer, name=name)
    compiled.team_depth = depth  # type: ignore[attr-defined]
    return compiled
