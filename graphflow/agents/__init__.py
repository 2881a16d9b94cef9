"""Agents: nodes that call chat models and tools, and prebuilt agent graphs.

- :class:`ToolNode` runs the tool calls of the last AI message (in parallel; errors become
  error ``ToolMessage`` s); :func:`tools_condition` routes to it.
- :class:`FunctionCallingNode` calls a model with native tool calling.
- :class:`ReActNode` speaks the ReAct text protocol (``Thought / Action / Action Input /
  Observation / Final Answer``) for models without tool calling.
- :func:`create_function_calling_agent` / :func:`create_react_agent`: compiled
  ``agent <-> tools`` loops over :class:`AgentState`.
- :func:`llm_router`: a conditional edge decided by a model (structured output).
"""

from .function_calling import FunctionCallingNode
from .prebuilt import create_function_calling_agent, create_react_agent
from .react import ReActNode
from .router import llm_router
from .state import AgentState
from .tool_node import ToolNode, tools_condition

__all__ = [
    "AgentState",
    "FunctionCallingNode",
    "ReActNode",
    "ToolNode",
    "create_function_calling_agent",
    "create_react_agent",
    "llm_router",
    "tools_condition",
]
