"""graphflow: agent workflows as typed state graphs.

Build a :class:`StateGraph` over a typed state, add nodes and edges, ``compile()`` it, then
``invoke`` / ``stream`` it. See ``docs/semantics.md`` for the exact semantics.
"""

from .constants import END, START
from .engine.context import RunContext
from .engine.interrupts import Interrupt, interrupt
from .errors import (
    GraphflowError,
    GraphRecursionError,
    GraphValidationError,
    GraphValidationWarning,
    InvalidUpdateError,
    NodeError,
    NodeTimeoutError,
)
from .graph.state_graph import StateGraph
from .types import Command, RetryPolicy, Send

__all__ = [
    "Command",
    "END",
    "GraphRecursionError",
    "GraphValidationError",
    "GraphValidationWarning",
    "GraphflowError",
    "Interrupt",
    "InvalidUpdateError",
    "NodeError",
    "NodeTimeoutError",
    "RetryPolicy",
    "RunContext",
    "START",
    "Send",
    "StateGraph",
    "interrupt",
]
__version__ = "0.1.0"
