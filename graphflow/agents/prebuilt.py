"""Prebuilt agent graphs: agent node -> (tool calls?) -> ToolNode -> back to the agent.

::

    START -> agent --tools_condition--> tools -> agent
                   \\--------------------> END

``max_iterations`` is enforced by the agent node: it counts the AI messages written since the
last human message (the model calls made for the current request); once there are
``max_iterations`` of them it does not call the model again and writes a final ``AIMessage``
saying the limit was hit (no tool calls, so ``tools_condition`` ends the run). The state stays
a valid conversation and a later human message starts a fresh count. (The run's
``recursion_limit`` still applies on top, as a safety net for the graph as a whole.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..constants import START
from ..graph.state_graph import StateGraph
from ..messages import SystemMessage
from .function_calling import FunctionCallingNode
from .react import ReActNode
from .state import AgentState
from .tool_node import ErrorHandler, ToolNode, tools_condition

__all__ = ["create_function_calling_agent", "create_react_agent"]


def _agent_graph(agent: Any, tools: list[Any], *, checkpointer: Any, name: str,
                 state_schema: Any, handle_tool_errors: ErrorHandler,
                 tool_timeout: float | None) -> Any:
    g = StateGraph(state_schema or AgentState)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode(tools, handle_errors=handle_tool_errors, timeout=tool_timeout))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition)
    g.add_edge("tools", "agent")
    return g.compile(checkpointer, name=name)


def create_function_calling_agent(
    model: Any, tools: Iterable[Any], *, system: str | SystemMessage | None = None,
    checkpointer: Any = None, max_iterations: int = 25, name: str = "agent",
    state_schema: Any = None, handle_tool_errors: ErrorHandler = True,
    tool_timeout: float | None = None,
) -> Any:
    """A compiled agent for models with native tool calling.

    Nodes ``"agent"`` (:class:`FunctionCallingNode`) and ``"tools"`` (:class:`ToolNode`),
    ``add_conditional_edges("agent", tools_condition)`` and ``tools -> agent``.

    Args:
        model: a :class:`~graphflow.models.ChatModel`.
        tools: ``@tool`` functions, ``Tool`` objects or plain functions.
        system: the system prompt (not stored in the state).
        checkpointer: makes threads, interrupts (``confirm=True`` tools) and resumes work.
        max_iterations: the most model calls per request (see the module docstring).
        name: the compiled graph's name (its node name when used as a subgraph).
        state_schema: a schema extending :class:`AgentState` (default: ``AgentState``).
        handle_tool_errors: ``ToolNode(handle_errors=...)``.
        tool_timeout: ``ToolNode(timeout=...)``.

    Invoke with ``{"messages": [("user", "...")]}``; the answer is the last message.
    """
    agent = FunctionCallingNode(model, tools, system=system, max_iterations=max_iterations)
    return _agent_graph(agent, agent.tools, checkpointer=checkpointer, name=name,
                        state_schema=state_schema, handle_tool_errors=handle_tool_errors,
                        tool_timeout=tool_timeout)


def create_react_agent(
    model: Any, tools: Iterable[Any], *, system: str | None = None, checkpointer: Any = None,
    max_iterations: int = 25, name: str = "agent", state_schema: Any = None,
    handle_tool_errors: ErrorHandler = True, tool_timeout: float | None = None,
) -> Any:
    """A compiled agent speaking the ReAct text protocol (for models without tool calling).

    The same graph as :func:`create_function_calling_agent`, with a :class:`ReActNode`
    (``execute_tools=False``) as ``"agent"``: it turns each ``Action`` into an ``AIMessage``
    carrying the tool call, the ``"tools"`` node runs it, and its ``ToolMessage`` is the next
    ``Observation``. Replies the node cannot read are answered with an Observation inside the
    agent node (they count as iterations). Same arguments as
    :func:`create_function_calling_agent`.
    """
    agent = ReActNode(model, tools, system=system, max_iterations=max_iterations,
                      execute_tools=False)
    return _agent_graph(agent, agent.tools, checkpointer=checkpointer, name=name,
                        state_schema=state_schema, handle_tool_errors=handle_tool_errors,
                        tool_timeout=tool_timeout)
