"""graphflow: agent workflows as typed state graphs.

Build a :class:`StateGraph` over a typed state, add nodes and edges, ``compile()`` it, then
``invoke`` / ``stream`` it. See ``docs/semantics.md`` for the exact semantics.
"""

from .constants import END, START
from .engine.config import RunnableConfig
from .engine.context import RunContext, Runtime, get_config, get_stream_writer
from .engine.interrupts import Interrupt, interrupt
from .errors import (
    GraphflowError,
    GraphRecursionError,
    GraphValidationError,
    GraphValidationWarning,
    InvalidThreadIdError,
    InvalidUpdateError,
    NodeError,
    NodeTimeoutError,
    RunCancelledError,
    SignalTimeoutError,
    ThreadBusyError,
    TokenBudgetExceeded,
)
from .graph.managed import IsLastStep, RemainingSteps
from .graph.state_graph import StateGraph
from .types import CachePolicy, Command, RetryPolicy, Send

__all__ = [
    "AIMessage",
    "AnyMessage",
    "CachePolicy",
    "Command",
    "END",
    "GraphRecursionError",
    "GraphValidationError",
    "GraphValidationWarning",
    "GraphflowError",
    "HumanMessage",
    "Interrupt",
    "InvalidThreadIdError",
    "InvalidUpdateError",
    "IsLastStep",
    "MessagesState",
    "NodeError",
    "NodeTimeoutError",
    "RemainingSteps",
    "RemoveMessage",
    "RetryPolicy",
    "RunCancelledError",
    "RunContext",
    "RunnableConfig",
    "Runtime",
    "START",
    "Send",
    "SignalTimeoutError",
    "StateGraph",
    "SystemMessage",
    "ThreadBusyError",
    "TokenBudgetExceeded",
    "ToolCall",
    "ToolMessage",
    "add_messages",
    "get_config",
    "get_stream_writer",
    "interrupt",
]
__version__ = "0.1.0"

_MESSAGES = frozenset({"AIMessage", "AnyMessage", "HumanMessage", "MessagesState",
                       "RemoveMessage", "SystemMessage", "ToolCall", "ToolMessage",
                       "add_messages"})


def __getattr__(name: str) -> object:  # messages need pydantic: loaded on first use
    if name in _MESSAGES:
        from . import messages

        return getattr(messages, name)
    raise AttributeError(f"module 'graphflow' has no attribute {name!r}")
