""":class:`ScriptedModel`: a deterministic chat model for tests and offline examples."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..messages import AIMessage, AIMessageChunk, Message, ToolCall, ToolCallChunk, Usage
from .base import ChatModel

__all__ = ["ScriptedModel"]

Reply = AIMessage | str | dict[str, Any] | list[ToolCall]


def _as_reply(value: Any) -> AIMessage:
    """A fresh AIMessage for a script item (a given AIMessage is copied: the answer is filled
    in, e.g. its usage, and the script may use the same object twice)."""
    if isinstance(value, AIMessage):
        return value.model_copy()
    if isinstance(value, str):
        return AIMessage(content=value)
    if isinstance(value, ToolCall):
        return AIMessage(tool_calls=[value])
    if isinstance(value, list) and all(isinstance(c, ToolCall) for c in value):
        return AIMessage(tool_calls=list(value))
    if isinstance(value, dict):
        return AIMessage.model_validate(value)
    raise TypeError(f"ScriptedModel cannot answer with {type(value).__name__} {value!r:.60}")


def _tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


class ScriptedModel(ChatModel):
    """Answers from a script: a list of replies (used in order) or a function of the messages.

    A reply is an :class:`AIMessage`, a string, a :class:`ToolCall` or list of them, or a dict.
    Usage is estimated (4 characters a token) so budgets and totals behave as with a real
    provider; streaming splits text into words and tool-call arguments into pieces.

    Example::

        model = ScriptedModel([
            [ToolCall(name="multiply", args={"a": 6, "b": 7})],
            "6 x 7 = 42",
        ])
    """

    provider = "scripted"

    def __init__(self, replies: Sequence[Reply] | Callable[[list[Message]], Reply],
                 *, model: str = "scripted", price: tuple[float, float] | None = None) -> None:
        super().__init__(model, price=price)
        self._fn = replies if callable(replies) else None
        self._replies = [] if callable(replies) else list(replies)
        self._lock = threading.Lock()
        self.calls: list[list[Message]] = []  # what the model was asked, call by call

    def _next(self, messages: list[Message]) -> AIMessage:
        with self._lock:
            self.calls.append(list(messages))
            n = len(self.calls)
            if self._fn is not None:
                reply = self._fn(messages)
            elif n <= len(self._replies):
                reply = self._replies[n - 1]
            else:
                raise RuntimeError(
                    f"ScriptedModel ran out of replies: call #{n}, but the script has "
                    f"{len(self._replies)}")
        msg = _as_reply(reply)
        if msg.usage is None:
            asked = sum(_tokens(m.content) for m in messages)
            said = _tokens(msg.content) + sum(_tokens(json.dumps(c.args)) + 1
                                              for c in msg.tool_calls)
            msg.usage = Usage(input_tokens=asked, output_tokens=said)
        if msg.finish_reason is None:  # as a provider says it, streamed or not
            msg.finish_reason = "tool_calls" if msg.tool_calls else "stop"
        return msg

    def _generate(self, messages: list[Message], *, tools: list[Any] | None, tool_choice: Any,
                  response_format: Any) -> AIMessage:
        return self._next(messages)

    def _stream(self, messages: list[Message], *, tools: list[Any] | None, tool_choice: Any,
                response_format: Any) -> Iterator[AIMessageChunk]:
        msg = self._next(messages)
        words = msg.content.split(" ") if msg.content else []
        for i, word in enumerate(words):
            yield AIMessageChunk(id=msg.id, content=word if i == 0 else " " + word)
        for index, call in enumerate(msg.tool_calls):
            args = json.dumps(call.args)
            half = len(args) // 2
            yield AIMessageChunk(id=msg.id, tool_call_chunks=[
                ToolCallChunk(index=index, id=call.id, name=call.name, args=args[:half])])
            yield AIMessageChunk(id=msg.id, tool_call_chunks=[
                ToolCallChunk(index=index, args=args[half:])])
        yield AIMessageChunk(id=msg.id, usage=msg.usage, finish_reason=msg.finish_reason)
