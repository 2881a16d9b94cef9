"""The :class:`ChatModel` base class: what every provider shares.

A provider implements ``_generate`` (and, when it can, ``_stream`` and the async twins). The base
class turns whatever the caller passed into messages, repairs tool-call histories, parses
structured output, and — inside a graph node — journals the call (a resumed node never pays for
a finished call twice), streams tokens on the run's ``"messages"`` mode as ``(chunk, node)``, and
adds the call's usage and cost to the run's totals (enforcing its ``token_budget``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Generic, TypeVar

from ..engine.interrupts import SCOPE
from ..engine.journal import ajournaled, journaled
from ..messages import (
    AIMessage,
    AIMessageChunk,
    Message,
    Usage,
    all_messages,
    merge_chunks,
    repair_tool_calls,
    to_messages,
)
from ..tracing import traced_amodel, traced_model

__all__ = ["ChatModel", "StructuredModel", "StructuredOutputError"]

T = TypeVar("T")


class StructuredOutputError(ValueError):
    """The model's answer did not parse into the requested ``response_format``."""


class ChatModel:
    """Base class of chat models. ``invoke``/``ainvoke``/``stream``/``astream`` are the API.

    Args:
        model: the provider's model name.
        price: ``(input, output)`` price per million tokens, for the run's cost totals.
    """

    provider = "base"

    def __init__(self, model: str, *, price: tuple[float, float] | None = None) -> None:
        self.model = model
        self.price = price
        self.bound_tools: list[Any] | None = None  # set by bind_tools
        self.bound_tool_choice: Any = None

    @property
    def name(self) -> str:
        return f"{self.provider}:{self.model}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model!r})"

    # -- to implement ----------------------------------------------------------------------------

    def _generate(self, messages: list[Message], *, tools: list[Any] | None,
                  tool_choice: Any, response_format: Any) -> AIMessage:
        raise NotImplementedError

    async def _agenerate(self, messages: list[Message], *, tools: list[Any] | None,
                         tool_choice: Any, response_format: Any) -> AIMessage:
        return await asyncio.to_thread(self._generate, messages, tools=tools,
                                       tool_choice=tool_choice, response_format=response_format)

    def _stream(self, messages: list[Message], *, tools: list[Any] | None, tool_choice: Any,
                response_format: Any) -> Iterator[AIMessageChunk]:
        msg = self._generate(messages, tools=tools, tool_choice=tool_choice,
                             response_format=response_format)
        yield _as_chunk(msg)

    async def _astream(self, messages: list[Message], *, tools: list[Any] | None,
                       tool_choice: Any, response_format: Any) -> AsyncIterator[AIMessageChunk]:
        msg = await self._agenerate(messages, tools=tools, tool_choice=tool_choice,
                                    response_format=response_format)
        yield _as_chunk(msg)

    # -- shared ----------------------------------------------------------------------------------

    def cost(self, usage: Usage | None) -> float:
        """The price of ``usage`` in the currency of :attr:`price` (0 when unknown)."""
        if usage is None or self.price is None:
            return 0.0
        return (usage.input_tokens * self.price[0] + usage.output_tokens * self.price[1]) / 1e6

    def _prepare(self, messages: Any) -> list[Message]:
        msgs = to_messages(messages)
        if not all_messages(msgs):  # drop RemoveMessages; keep subclasses of Message
            msgs = [m for m in msgs if isinstance(m, Message)]
        return repair_tool_calls(msgs)

    def _options(self, tools: Sequence[Any] | None, tool_choice: Any,
                  response_format: Any) -> dict[str, Any]:
        """A call's tools, tool choice and response format: the per-call arguments, else what
        :meth:`bind_tools` bound. A ``response_format`` model is registered for checkpoint
        serialization (the journaled answer holds an instance of it)."""
        if tools is None:
            tools = self.bound_tools
            if tool_choice is None:
                tool_choice = self.bound_tool_choice
        if response_format is not None:
            _register_format(response_format)
        return {"tools": list(tools) if tools else None, "tool_choice": tool_choice,
                "response_format": response_format}

    # -- configured copies -----------------------------------------------------------------------

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None) -> ChatModel:
        """A copy of this model that offers ``tools`` (and ``tool_choice``) on every call.

        ``tools``: ``@tool`` functions, plain functions (wrapped with ``@tool``) or dicts in a
        provider's format. Arguments given to a call still win: ``invoke(..., tools=[...])``
        replaces the bound tools for that call. The copy shares the original's client, retries
        and breaker.
        """
        bound = copy.copy(self)
        bound.bound_tools = [_as_tool(t) for t in tools]
        bound.bound_tool_choice = tool_choice
        return bound

    def with_structured_output(self, schema: type[T]) -> StructuredModel[T]:
        """A model whose ``invoke`` returns an instance of ``schema`` (a pydantic model class),
        parsed from the answer, instead of the :class:`AIMessage` (as in LangChain). For the
        whole message (usage, raw text) call ``invoke(..., response_format=schema)`` and read
        ``.parsed``."""
        if not (isinstance(schema, type) and hasattr(schema, "model_validate_json")):
            raise TypeError(f"with_structured_output needs a pydantic model class, got "
                            f"{schema!r:.80}")
        return StructuredModel(self, schema)

    def _finish(self, msg: AIMessage, response_format: Any) -> AIMessage:
        if msg.model is None:
            msg.model = self.model  # the provider built this message for this call: ours to fill
        if response_format is not None and msg.parsed is None and not msg.tool_calls:
            msg = msg.model_copy(update={"parsed": parse_structured(msg.content,
                                                                    response_format)})
        return msg

    def _account(self, run: Any, node: str, msg: AIMessage, *, earlier: bool = False) -> None:
        usage = msg.usage
        if usage is not None:
            run.add_usage(usage.input_tokens, usage.output_tokens, self.cost(usage),
                          earlier=earlier)

    # -- the API ---------------------------------------------------------------------------------

    def invoke(self, messages: Any, *, tools: Sequence[Any] | None = None,
               tool_choice: Any = None, response_format: Any = None) -> AIMessage:
        """Ask the model; returns its :class:`AIMessage` (text, tool calls, usage).

        ``messages``: messages, ``(role, text)`` tuples, strings or dicts. ``tools``: graphflow
        tools (or provider-format dicts). ``response_format``: a pydantic model class; its
        parsed instance is on ``.parsed``.
        """
        msgs = self._prepare(messages)
        kw = self._options(tools, tool_choice, response_format)
        scope = SCOPE.get(None)
        if scope is None:
            return self._finish(self._generate(msgs, **kw), response_format)
        run, task = scope

        def call() -> AIMessage:
            if run.wants("messages"):
                chunks = []
                for chunk in self._stream(msgs, **kw):
                    run.emit("messages", (chunk, task.name))
                    chunks.append(chunk)
                msg = merge_chunks(chunks, model=self.model)
            else:
                msg = self._generate(msgs, **kw)
            msg = self._finish(msg, response_format)
            self._account(run, task.name, msg)
            return msg

        call = traced_model(self, task.name, call)
        msg = journaled(run, task, f"model:{self.name}", call,
                        lambda paid: self._account(run, task.name, paid, earlier=True))
        run.check_budget(task.name)
        return msg

    async def ainvoke(self, messages: Any, *, tools: Sequence[Any] | None = None,
                      tool_choice: Any = None, response_format: Any = None) -> AIMessage:
        """Async :meth:`invoke`."""
        msgs = self._prepare(messages)
        kw = self._options(tools, tool_choice, response_format)
        scope = SCOPE.get(None)
        if scope is None:
            return self._finish(await self._agenerate(msgs, **kw), response_format)
        run, task = scope

        async def call() -> AIMessage:
            if run.wants("messages"):
                chunks = []
                async for chunk in self._astream(msgs, **kw):
                    run.emit("messages", (chunk, task.name))
                    chunks.append(chunk)
                msg = merge_chunks(chunks, model=self.model)
            else:
                msg = await self._agenerate(msgs, **kw)
            msg = self._finish(msg, response_format)
            self._account(run, task.name, msg)
            return msg

        call = traced_amodel(self, task.name, call)
        msg = await ajournaled(run, task, f"model:{self.name}", call,
                               lambda paid: self._account(run, task.name, paid, earlier=True))
        run.check_budget(task.name)
        return msg

    def stream(self, messages: Any, *, tools: Sequence[Any] | None = None,
               tool_choice: Any = None, response_format: Any = None
               ) -> Iterator[AIMessageChunk]:
        """Yield the answer as it is produced. (Inside a node prefer :meth:`invoke`: it streams
        on the graph's ``"messages"`` mode by itself and is journaled.)"""
        msgs = self._prepare(messages)
        yield from self._stream(msgs, **self._options(tools, tool_choice, response_format))

    async def astream(self, messages: Any, *, tools: Sequence[Any] | None = None,
                      tool_choice: Any = None, response_format: Any = None
                      ) -> AsyncIterator[AIMessageChunk]:
        """Async :meth:`stream`."""
        msgs = self._prepare(messages)
        async for chunk in self._astream(msgs, **self._options(tools, tool_choice,
                                                               response_format)):
            yield chunk


def _as_tool(t: Any) -> Any:
    """A tool as the providers take it: tools and dicts as they are, functions as ``@tool``."""
    if isinstance(t, dict) or hasattr(t, "to_openai") or hasattr(t, "to_anthropic"):
        return t
    if not callable(t):
        raise TypeError(f"not a tool: {t!r:.60} (pass @tool functions, Tool objects, plain "
                        f"functions or provider-format dicts)")
    from ..tools import tool

    return tool(t)


class StructuredModel(Generic[T]):
    """What :meth:`ChatModel.with_structured_output` returns: ``invoke`` / ``ainvoke`` answer
    with an instance of :attr:`schema`. Inside a graph node the call is journaled like any
    model call (it is one), and the schema is registered for checkpoint serialization.

    Attributes:
        model: the chat model asked.
        schema: the pydantic model class answers are parsed into.
    """

    def __init__(self, model: ChatModel, schema: type[T]) -> None:
        self.model = model
        self.schema = schema

    def __repr__(self) -> str:
        return f"{self.model!r}.with_structured_output({self.schema.__name__})"

    def invoke(self, messages: Any) -> T:
        """Ask the model; returns the parsed answer (:class:`StructuredOutputError` if the
        model's answer does not parse)."""
        return self._parsed(self.model.invoke(messages, response_format=self.schema))

    async def ainvoke(self, messages: Any) -> T:
        """Async :meth:`invoke`."""
        return self._parsed(await self.model.ainvoke(messages, response_format=self.schema))

    def _parsed(self, msg: AIMessage) -> T:
        if msg.parsed is None:
            called = ", ".join(c.name for c in msg.tool_calls)
            why = f"it called tools ({called}) instead" if called else "it gave no answer"
            raise StructuredOutputError(f"{self.model.name} did not answer in the "
                                        f"{self.schema.__name__} format: {why}")
        return msg.parsed  # type: ignore[no-any-return]


_REGISTERED_FORMATS: set[Any] = set()
_FORMATS_LOCK = threading.Lock()


def _register_format(response_format: Any) -> None:
    """Let checkpoints store instances of ``response_format`` (and the classes it holds)."""
    if not isinstance(response_format, type) or response_format in _REGISTERED_FORMATS:
        return
    from ..checkpoint.serde import register_schema_types

    with _FORMATS_LOCK:
        # a name clash is reported where an instance is stored (naming the class), not here
        with contextlib.suppress(TypeError, ValueError):
            register_schema_types(response_format)
        _REGISTERED_FORMATS.add(response_format)


def _as_chunk(msg: AIMessage) -> AIMessageChunk:
    from ..messages import ToolCallChunk

    return AIMessageChunk(
        id=msg.id, content=msg.content, usage=msg.usage, finish_reason=msg.finish_reason,
        tool_call_chunks=[ToolCallChunk(index=i, id=c.id, name=c.name, args=json.dumps(c.args))
                          for i, c in enumerate(msg.tool_calls)])


def parse_structured(text: str, response_format: Any) -> Any:
    """Parse a model's JSON answer into ``response_format`` (a pydantic model class)."""
    body = text.strip()
    if body.startswith("```"):  # models like to fence JSON
        body = body.strip("`")
        body = body[4:] if body.startswith("json") else body
    try:
        return response_format.model_validate_json(body)
    except Exception as exc:
        raise StructuredOutputError(
            f"the model's answer does not parse as {response_format.__name__}: {exc}") from exc
