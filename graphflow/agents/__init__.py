"""Agents: nodes that call chat models and tools, prebuilt agent graphs, and orchestrators.

- :class:`ToolNode` runs the tool calls of the last AI message (in parallel; errors become
  error ``ToolMessage`` s); :func:`tools_condition` routes to it.
- :class:`FunctionCallingNode` calls a model with native tool calling.
- :class:`ReActNode` speaks the ReAct text protocol (``Thought / Action / Action Input /
  Observation / Final Answer``) for models without tool calling.
- :func:`create_function_calling_agent` / :func:`create_react_agent`: compiled
  ``agent <-> tools`` loops over :class:`AgentState`.
- :func:`llm_router`: a conditional edge decided by a model (structured output).
- :class:`Agent`: a model with instructions, tools, handoffs, memory and typed output — a
  compiled graph that runs alone (``run``/``stream`` with typed events), as a tool of another
  agent (``as_tool``), or as a node of any graph.

Orchestrators (each a compiled graph built from graphflow's own nodes, one module per pattern):
:func:`create_hierarchical_orchestrator` (plan, delegate as a DAG, synthesize),
:func:`create_parallel_orchestrator` (fan out, then collect / vote / judge),
:func:`create_pipeline` (stages with transforms and validators),
:func:`handoff_tool` / :func:`create_swarm` (agents handing over to each other),
:func:`create_supervisor` (a supervisor routing by tool call) and
:func:`create_group_chat` (agents taking turns, a selector choosing).
"""

from ._team import add_usage, total_usage
from .agent import (
    Agent,
    AgentEvent,
    AgentResult,
    ErrorEvent,
    HandoffEvent,
    Memory,
    ResponseEvent,
    ThinkingEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from .aggregate import (
    BranchResult,
    JudgeVerdict,
    LLMJudge,
    Vote,
    collect,
    llm_judge,
    majority_vote,
    normalize_answer,
)
from .function_calling import FunctionCallingNode
from .group_chat import GroupChatState, LLMSelector, create_group_chat, llm_selector
from .handoff import SwarmState, create_swarm, handoff_tool
from .hierarchical import (
    HierarchyState,
    Plan,
    PlanTask,
    PlanValidationError,
    TaskResult,
    create_hierarchical_orchestrator,
    validate_plan,
)
from .parallel import BranchFailedError, ParallelState, create_parallel_orchestrator
from .pipeline import PipelineState, Stage, StageFailure, create_pipeline
from .prebuilt import create_function_calling_agent, create_react_agent
from .react import ReActNode
from .router import llm_router
from .state import AgentState
from .supervisor import SupervisorState, create_supervisor
from .tool_node import ToolNode, tools_condition

__all__ = [
    "Agent",
    "AgentEvent",
    "AgentResult",
    "AgentState",
    "BranchFailedError",
    "BranchResult",
    "ErrorEvent",
    "FunctionCallingNode",
    "GroupChatState",
    "HandoffEvent",
    "HierarchyState",
    "JudgeVerdict",
    "LLMJudge",
    "LLMSelector",
    "Memory",
    "ParallelState",
    "PipelineState",
    "Plan",
    "PlanTask",
    "PlanValidationError",
    "ReActNode",
    "ResponseEvent",
    "Stage",
    "StageFailure",
    "SupervisorState",
    "SwarmState",
    "TaskResult",
    "ThinkingEvent",
    "ToolCallEvent",
    "ToolNode",
    "ToolResultEvent",
    "Vote",
    "add_usage",
    "collect",
    "create_function_calling_agent",
    "create_group_chat",
    "create_hierarchical_orchestrator",
    "create_parallel_orchestrator",
    "create_pipeline",
    "create_react_agent",
    "create_supervisor",
    "create_swarm",
    "handoff_tool",
    "llm_judge",
    "llm_router",
    "llm_selector",
    "majority_vote",
    "normalize_answer",
    "tools_condition",
    "total_usage",
    "validate_plan",
]
