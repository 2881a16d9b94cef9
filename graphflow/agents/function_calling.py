""":class:`FunctionCallingNode`: an agent node for models with native tool calling."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..messages import AIMessage, Message, SystemMessage
from .state import as_tools, limit_message, messages_of, model_calls_this_turn

__all__ = ["FunctionCallingNode"]


def system_message(system: str | SystemMessage | None) -> SystemMessage | None:
    if system is None or isinstance(system, SystemMessage):
        return system
    return SystemMessage(content=str(system))


class FunctionCallingNode:
    """Calls the model on the conversation, offering it the tools; returns its answer.

    ``model.invoke([system?] + messages, tools=tools)`` — the model answers with text, tool
    calls, or both; route on it with :func:`tools_condition`. Inside a graph the call is
    journaled (a resumed node does not call the model again) and its tokens stream on the
    ``"messages"`` mode.

    Args:
        model: a :class:`~graphflow.models.ChatModel`.
        tools: the tools the model may call (``@tool`` functions or plain functions).
        system: a system prompt put before the conversation (not stored in the state).
        messages_key: the state key holding the messages.
        max_iterations: the most model calls per request — counted as the AI messages after
            the last human message. Once reached, the node does not call the model and answers
            with an AI message saying the limit was hit (no tool calls, so the loop ends).
            None: no limit.
        tool_choice: passed to the model (``"auto"``, ``"required"``, a tool name, ...).

    Returns ``{messages_key: [AIMessage]}``. The node is sync (under ``ainvoke`` the engine
    runs it in a thread); :meth:`ainvoke` is its async twin for direct use.
    """

    graphflow_kind = "agent"
    __name__ = "agent"  # add_node(FunctionCallingNode(...)) names the node "agent"

    def __init__(self, model: Any, tools: Iterable[Any] = (), *,
                 system: str | SystemMessage | None = None, messages_key: str = "messages",
                 max_iterations: int | None = None, tool_choice: Any = None) -> None:
        if max_iterations is not None and max_iterations < 1:
            raise ValueError(f"max_iterations must be >= 1, got {max_iterations!r}")
        self.model = model
        self.tools = as_tools(tools)
        self.system = system_message(system)
        self.messages_key = messages_key
        self.max_iterations = max_iterations
        self.tool_choice = tool_choice

    def __repr__(self) -> str:
        return (f"FunctionCallingNode({self.model!r}, "
                f"tools=[{', '.join(t.name for t in self.tools)}])")

    def _prompt(self, state: Any) -> list[Message] | AIMessage:
        history = messages_of(state, self.messages_key)
        limit = self.max_iterations
        if limit is not None and model_calls_this_turn(history) >= limit:
            return limit_message(limit)
        return [self.system, *history] if self.system is not None else history

    def __call__(self, state: Any) -> dict[str, Any]:
        prompt = self._prompt(state)
        if isinstance(prompt, AIMessage):
            return {self.messages_key: [prompt]}
        answer = self.model.invoke(prompt, tools=self.tools or None,
                                   tool_choice=self.tool_choice)
        return {self.messages_key: [answer]}

    invoke = __call__

    async def ainvoke(self, state: Any) -> dict[str, Any]:
        """Async twin of calling the node (``model.ainvoke``)."""
        prompt = self._prompt(state)
        if isinstance(prompt, AIMessage):
            return {self.messages_key: [prompt]}
        answer = await self.model.ainvoke(prompt, tools=self.tools or None,
                                          tool_choice=self.tool_choice)
        return {self.messages_key: [answer]}
