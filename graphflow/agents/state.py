"""The agents' state and the helpers their nodes share."""

# no `from __future__ import annotations` here: AgentState's hints must be real objects for
# the schemas of graphs (and of users' subclasses) to resolve them.
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..messages import (
    _KINDS,
    AIMessage,
    Message,
    MessagesState,
    all_messages,
    message_kind,
    to_message,
)

__all__ = ["OBSERVATION", "AgentState", "as_tools", "limit_message", "messages_of",
           "model_calls_this_turn"]

OBSERVATION = "observation"
"""``name`` of the HumanMessages a ReAct agent writes to give the model feedback (a reply it
could not read); they do not start a new turn."""


class AgentState(MessagesState):
    """``{"messages": [...]}`` with the :func:`add_messages` reducer (the agents' name of
    :class:`~graphflow.messages.MessagesState`). Extend it::

    class MyState(AgentState):
        user_id: str
    """


def messages_of(state: Any, key: str = "messages") -> list[Message]:
    """The messages in ``state`` (a dict, an object with the attribute, or the list itself);
    ``("user", "hi")`` tuples, strings and dicts are turned into messages. The result may be
    the state's own list: treat it as read-only."""
    if isinstance(state, list):
        msgs = state
    elif isinstance(state, Mapping):
        try:
            msgs = state[key]
        except KeyError:
            raise ValueError(f"the state has no {key!r} key (keys: {list(state)}); pass "
                             f"messages_key=... to say where the messages are") from None
    else:
        msgs = getattr(state, key, None)
        if msgs is None:
            raise ValueError(f"the state ({type(state).__name__}) has no {key!r} attribute; "
                             f"pass messages_key=... to say where the messages are")
    if type(msgs) is list and all_messages(msgs):
        return msgs  # the state's own list, not a copy: read it, never change it
    return [m if isinstance(m, Message) else to_message(m) for m in msgs or ()]


def model_calls_this_turn(messages: Sequence[Message]) -> int:
    """How many AI messages follow the last human message (ReAct feedback excluded): the
    model calls an agent has made to answer the current request."""
    n = 0
    kinds = _KINDS
    for msg in reversed(messages):
        kind = kinds.get(type(msg)) or message_kind(msg)
        if kind == "human" and msg.name != OBSERVATION:
            break
        if kind == "ai":
            n += 1
    return n


def limit_message(max_iterations: int, what: str = "model calls") -> AIMessage:
    """The final answer of an agent that hit its ``max_iterations``."""
    return AIMessage(
        content=(f"I stopped before finishing: this agent may make at most {max_iterations} "
                 f"{what} per request (max_iterations={max_iterations}) and reached that limit "
                 f"without a final answer."),
        finish_reason="max_iterations")


def as_tools(tools: Iterable[Any] | None) -> list[Any]:
    """``Tool`` objects from tools and plain functions (wrapped with ``@tool``); names must be
    unique."""
    from ..tools import Tool, tool

    out: list[Any] = []
    seen: set[str] = set()
    for t in tools or ():
        if not isinstance(t, Tool) and not (hasattr(t, "name") and hasattr(t, "invoke")):
            if not callable(t):
                raise TypeError(f"not a tool: {t!r} (pass @tool functions, Tool objects or "
                                f"plain functions)")
            t = tool(t)
        if t.name in seen:
            raise ValueError(f"two tools are named {t.name!r}; tool names must be unique")
        seen.add(t.name)
        out.append(t)
    return out
