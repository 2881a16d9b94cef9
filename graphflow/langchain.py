"""Bring LangChain parts into graphflow: chat models, tools and messages.

Needs ``langchain-core`` (``pip install "graphflow[langchain]"``); graphflow itself never
imports it. Everything here converts at the boundary, so inside graphflow there is one kind of
message, one tool class and one model protocol:

- :class:`LangChainChatModel` wraps a LangChain chat model (``ChatOpenAI(...)``,
  ``ChatAnthropic(...)``, any ``BaseChatModel``) as a graphflow ``ChatModel``: agents,
  ``ToolNode`` loops, journaling of calls inside nodes, token usage and the ``"messages"``
  stream work with it as with graphflow's own models.
- :func:`from_langchain_tool` turns a LangChain tool (``@tool``-decorated function,
  ``StructuredTool``, any ``BaseTool``) into a graphflow :class:`~graphflow.tools.Tool`, its
  name, description and argument schema kept.
- :func:`from_langchain_message` / :func:`to_langchain_message` (and the ``..._messages`` forms)
  convert messages both ways. graphflow's reducers and models also accept LangChain messages
  directly (``add_messages`` converts them).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from .messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    Message,
    RemoveMessage,
    SystemMessage,
    ToolCall,
    ToolCallChunk,
    ToolMessage,
    Usage,
)
from .models.base import ChatModel

__all__ = [
    "LangChainChatModel",
    "from_langchain_message",
    "from_langchain_messages",
    "from_langchain_tool",
    "to_langchain_message",
    "to_langchain_messages",
]


def _lc() -> Any:
    try:
        import langchain_core.messages as lc_messages
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError('graphflow.langchain needs langchain-core: pip install '
                          '"graphflow[langchain]"') from None
    return lc_messages


# -- messages --------------------------------------------------------------------------------------


def _text(content: Any, where: str) -> str:
    """LangChain content (a str, or a list of str and content blocks) as graphflow's text."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content or ():
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        else:
            kind = block.get("type") if isinstance(block, dict) else type(block).__name__
            raise ValueError(f"{where} holds a {kind!r} content block; graphflow messages hold "
                             f"text only")
    return "".join(parts)


def _usage(meta: Any) -> Usage | None:
    if not meta:
        return None
    return Usage(input_tokens=int(meta.get("input_tokens") or 0),
                 output_tokens=int(meta.get("output_tokens") or 0))


def from_langchain_message(message: Any) -> Message | RemoveMessage:
    """A graphflow message from a LangChain one (human, system, ai, tool; also a
    ``RemoveMessage``); id, name, tool calls, usage and tool status carried over."""
    lc = _lc()
    where = f"LangChain {type(message).__name__}"
    common: dict[str, Any] = {"name": getattr(message, "name", None)}
    if getattr(message, "id", None):
        common["id"] = str(message.id)
    if isinstance(message, lc.RemoveMessage):
        return RemoveMessage(id=str(message.id))
    content = _text(message.content, where)
    if isinstance(message, lc.HumanMessage):
        return HumanMessage(content, **common)
    if isinstance(message, lc.SystemMessage):
        return SystemMessage(content, **common)
    if isinstance(message, lc.AIMessage):
        meta = getattr(message, "response_metadata", None) or {}
        return AIMessage(
            content, tool_calls=[ToolCall(id=c.get("id") or ToolCall(name="x").id,
                                          name=c["name"], args=c.get("args") or {})
                                 for c in message.tool_calls],
            usage=_usage(getattr(message, "usage_metadata", None)),
            model=meta.get("model_name") or meta.get("model"),
            finish_reason=meta.get("finish_reason") or meta.get("stop_reason"), **common)
    if isinstance(message, lc.ToolMessage):
        return ToolMessage(content, tool_call_id=message.tool_call_id,
                           status="error" if message.status == "error" else "ok", **common)
    if isinstance(message, lc.ChatMessage) and message.role in ("user", "assistant", "system"):
        cls = {"user": HumanMessage, "assistant": AIMessage, "system": SystemMessage}
        return cls[message.role](content, **common)
    raise TypeError(f"cannot turn a {where} into a graphflow message (human, system, ai and "
                    f"tool messages convert)")


def to_langchain_message(message: Message | RemoveMessage) -> Any:
    """The LangChain message for a graphflow one."""
    lc = _lc()
    if isinstance(message, RemoveMessage):
        return lc.RemoveMessage(id=message.id)
    common = {"id": message.id, "name": message.name}
    if isinstance(message, HumanMessage):
        return lc.HumanMessage(content=message.content, **common)
    if isinstance(message, SystemMessage):
        return lc.SystemMessage(content=message.content, **common)
    if isinstance(message, AIMessage):
        usage = message.usage
        extra = {} if usage is None else {"usage_metadata": {
            "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens}}
        meta = {k: v for k, v in (("model_name", message.model),
                                  ("finish_reason", message.finish_reason)) if v is not None}
        return lc.AIMessage(content=message.content, response_metadata=meta,
                            tool_calls=[{"name": c.name, "args": c.args, "id": c.id,
                                         "type": "tool_call"} for c in message.tool_calls],
                            **extra, **common)
    if isinstance(message, ToolMessage):
        return lc.ToolMessage(content=message.content, tool_call_id=message.tool_call_id,
                              status="error" if message.status == "error" else "success",
                              **common)
    raise TypeError(f"cannot turn {type(message).__name__} into a LangChain message")


def from_langchain_messages(messages: Iterable[Any]) -> list[Message | RemoveMessage]:
    """:func:`from_langchain_message` over a list (graphflow messages pass through)."""
    return [m if isinstance(m, (Message, RemoveMessage)) else from_langchain_message(m)
            for m in messages]


def to_langchain_messages(messages: Iterable[Message | RemoveMessage]) -> list[Any]:
    """:func:`to_langchain_message` over a list."""
    return [to_langchain_message(m) for m in messages]


# -- chat models ---------------------------------------------------------------------------------


def _tool_spec(tool: Any) -> Any:
    """A tool as LangChain's ``bind_tools`` takes it: graphflow tools in OpenAI's format."""
    to_openai = getattr(tool, "to_openai", None)
    return to_openai() if callable(to_openai) else tool


class LangChainChatModel(ChatModel):
    """A LangChain chat model used as a graphflow :class:`~graphflow.models.ChatModel`.

    Args:
        model: the LangChain chat model (a ``BaseChatModel``).
        price: ``(input, output)`` price per million tokens, for the run's cost totals.

    Tools (graphflow's, in OpenAI's format, or LangChain's) are bound with the model's
    ``bind_tools``; ``response_format`` with ``with_structured_output``.
    """

    provider = "langchain"

    def __init__(self, model: Any, *, price: tuple[float, float] | None = None) -> None:
        _lc()
        name = (getattr(model, "model_name", None) or getattr(model, "model", None)
                or type(model).__name__)
        super().__init__(str(name), price=price)
        self.lc_model = model

    def _runnable(self, tools: list[Any] | None, tool_choice: Any) -> Any:
        if not tools:
            return self.lc_model
        extra = {} if tool_choice is None else {"tool_choice": tool_choice}
        return self.lc_model.bind_tools([_tool_spec(t) for t in tools], **extra)

    def _answer(self, out: Any, response_format: Any) -> AIMessage:
        if response_format is not None:
            msg = from_langchain_message(out["raw"])
            assert isinstance(msg, AIMessage)
            if out.get("parsed") is not None:
                msg = msg.model_copy(update={"parsed": out["parsed"]})
            return msg
        msg = from_langchain_message(out)
        if not isinstance(msg, AIMessage):
            raise TypeError(f"the LangChain model answered with {type(out).__name__}, not an "
                            f"AI message")
        return msg

    def _structured(self, response_format: Any) -> Any:
        return self.lc_model.with_structured_output(response_format, include_raw=True)

    def _generate(self, messages: list[Message], *, tools: list[Any] | None, tool_choice: Any,
                  response_format: Any) -> AIMessage:
        lc_messages = to_langchain_messages(messages)
        if response_format is not None:
            return self._answer(self._structured(response_format).invoke(lc_messages),
                                response_format)
        return self._answer(self._runnable(tools, tool_choice).invoke(lc_messages), None)

    async def _agenerate(self, messages: list[Message], *, tools: list[Any] | None,
                         tool_choice: Any, response_format: Any) -> AIMessage:
        lc_messages = to_langchain_messages(messages)
        if response_format is not None:
            out = await self._structured(response_format).ainvoke(lc_messages)
            return self._answer(out, response_format)
        out = await self._runnable(tools, tool_choice).ainvoke(lc_messages)
        return self._answer(out, None)

    def _stream(self, messages: list[Message], *, tools: list[Any] | None, tool_choice: Any,
                response_format: Any) -> Iterator[AIMessageChunk]:
        if response_format is not None:  # structured output arrives whole
            yield from super()._stream(messages, tools=tools, tool_choice=tool_choice,
                                       response_format=response_format)
            return
        runnable = self._runnable(tools, tool_choice)
        for chunk in runnable.stream(to_langchain_messages(messages)):
            yield _chunk(chunk)

    async def _astream(self, messages: list[Message], *, tools: list[Any] | None,
                       tool_choice: Any, response_format: Any) -> AsyncIterator[AIMessageChunk]:
        if response_format is not None:
            async for chunk in super()._astream(messages, tools=tools, tool_choice=tool_choice,
                                                response_format=response_format):
                yield chunk
            return
        runnable = self._runnable(tools, tool_choice)
        async for chunk in runnable.astream(to_langchain_messages(messages)):
            yield _chunk(chunk)


def _chunk(chunk: Any) -> AIMessageChunk:
    """A graphflow chunk from a LangChain ``AIMessageChunk``."""
    meta = getattr(chunk, "response_metadata", None) or {}
    return AIMessageChunk(
        id=str(getattr(chunk, "id", None) or ""),
        content=_text(chunk.content, "a LangChain message chunk"),
        tool_call_chunks=[ToolCallChunk(index=c.get("index") or 0, id=c.get("id"),
                                        name=c.get("name"), args=c.get("args") or "")
                          for c in getattr(chunk, "tool_call_chunks", None) or ()],
        usage=_usage(getattr(chunk, "usage_metadata", None)),
        finish_reason=meta.get("finish_reason") or meta.get("stop_reason"))


# -- tools -----------------------------------------------------------------------------------------


def from_langchain_tool(lc_tool: Any) -> Any:
    """A graphflow :class:`~graphflow.tools.Tool` that calls a LangChain tool: the same name,
    description and arguments (types and descriptions, from its args schema), validated by
    graphflow before the call. The tool's result is returned as LangChain gives it."""
    from .tools import Tool

    _lc()
    schema = getattr(lc_tool, "tool_call_schema", None) or getattr(lc_tool, "args_schema", None)
    fields = getattr(schema, "model_fields", None)
    if fields is None:
        raise TypeError(f"LangChain tool {getattr(lc_tool, 'name', lc_tool)!r} has no pydantic "
                        f"args schema graphflow can read")
    params, annotations, docs = [], {}, []
    for name, field in fields.items():
        default = inspect.Parameter.empty if field.is_required() else field.get_default(
            call_default_factory=True)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=field.annotation))
        annotations[name] = field.annotation
        if field.description:
            docs.append(f"    {name}: {' '.join(field.description.split())}")
    only_async = getattr(lc_tool, "func", True) is None and getattr(lc_tool, "coroutine", None)

    if only_async:
        async def call(**kwargs: Any) -> Any:
            return await lc_tool.ainvoke(kwargs)
    else:
        def call(**kwargs: Any) -> Any:
            return lc_tool.invoke(kwargs)

    call.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    call.__annotations__ = annotations
    call.__name__ = lc_tool.name
    description = " ".join(str(lc_tool.description or lc_tool.name).split())
    call.__doc__ = description + ("\n\nArgs:\n" + "\n".join(docs) if docs else "")
    return Tool(call, name=lc_tool.name, description=description)
