""":class:`AnthropicChat`: Anthropic's Messages API on the official ``anthropic`` SDK.

What the conversion does for you:

- System messages (wherever they are in the history) are pulled out into the top-level
  ``system=`` parameter, joined by blank lines: the Messages API has no system role.
- Tool results (``ToolMessage``) become ``tool_result`` blocks in a *user* turn (``is_error`` for
  ``status="error"``); assistant tool calls become ``tool_use`` blocks. Consecutive turns of the
  same role are merged into one (a tool-result turn followed by a user message, several tool
  results in a row, ...) so the roles alternate as the API requires, with ``tool_result`` blocks
  first in their turn. Empty texts are dropped (the API rejects empty text blocks).
- ``max_tokens`` is required by the API: default 4096 (``max_tokens=`` to change it).

Structured output (``response_format=SomePydanticModel``) uses a **forced tool**: the model's
JSON schema becomes a tool named after the class, and ``tool_choice`` forces it (``{"type":
"tool"}``; ``{"type": "any"}`` when you pass other tools too, so the model may call one of them
first). The tool's input is the answer: it is validated into ``AIMessage.parsed`` and its JSON is
the message's ``content``; the forced call itself is not reported in ``tool_calls``. Works on
every Claude model and every SDK version, and streams (the input JSON arrives as ``content``
pieces). Not combinable with extended thinking, which forbids forced tool use.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

try:
    import anthropic
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("AnthropicChat needs the anthropic SDK, a dependency of graphflow: "
                      "pip install anthropic") from exc

from ..messages import (
    RAW_ARGS,
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolCallChunk,
    ToolMessage,
    Usage,
    new_id,
)
from .base import parse_structured
from .resilience import (
    CircuitBreaker,
    RetryConfig,
)
from .sdk_model import SDKChatModel

__all__ = ["AnthropicChat"]

DEFAULT_MAX_TOKENS = 4096


class AnthropicChat(SDKChatModel):
    """A chat model on Anthropic's Messages API.

    Args:
        model: e.g. ``"claude-haiku-4-5"``.
        api_key: default: ``$ANTHROPIC_API_KEY``; neither -> :class:`MissingAPIKeyError`.
        base_url: default: the SDK's (``$ANTHROPIC_BASE_URL`` or api.anthropic.com); without
            ``/v1``.
        timeout: seconds per HTTP attempt.
        retry: :class:`RetryConfig` (429, 5xx and 529, timeouts, connection errors).
        breaker: a :class:`CircuitBreaker`; ``None``: the one shared by every model on this
            base URL; ``False``: none.
        price: ``(input, output)`` per million tokens, for the run's cost totals.
        client / async_client: ready-made ``anthropic.Anthropic`` / ``AsyncAnthropic`` clients
            (their own retries are turned off on a copy).
        max_tokens: the answer's token limit (the API requires one).
        parallel_tool_calls: ``False`` sends ``disable_parallel_tool_use``.
        **params: more request parameters for every call (``temperature=0``, ...).
    """

    provider = "anthropic"
    env_key = "ANTHROPIC_API_KEY"

    def __init__(self, model: str = "claude-haiku-4-5", *, api_key: str | None = None,
                 base_url: str | None = None, timeout: float = 60.0,
                 retry: RetryConfig | None = None,
                 breaker: CircuitBreaker | Literal[False] | None = None,
                 price: tuple[float, float] | None = None, client: Any = None,
                 async_client: Any = None, max_tokens: int = DEFAULT_MAX_TOKENS,
                 parallel_tool_calls: bool | None = None, **params: Any) -> None:
        super().__init__(model, price=price)
        self.max_tokens = max_tokens
        self.parallel_tool_calls = parallel_tool_calls
        self._connect(api_key=api_key, base_url=base_url, timeout=timeout, retry=retry,
                      breaker=breaker, client=client, async_client=async_client, params=params)

    def _sdk(self) -> tuple[type, type]:
        return anthropic.Anthropic, anthropic.AsyncAnthropic

    def _create(self, client: Any) -> Any:
        return client.messages.create

    # -- requests --------------------------------------------------------------------------------

    def _request(self, messages: list[Message], tools: list[Any] | None, tool_choice: Any,
                 response_format: Any, *, stream: bool) -> tuple[dict[str, Any], str | None]:
        """The ``messages.create`` arguments, and the name of the answer tool (structured)."""
        system, wire = to_anthropic_messages(messages)
        kw: dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens, **self._params}
        kw["messages"] = wire
        if system:
            kw["system"] = system
        wire_tools = [_anthropic_tool(t) for t in tools or []]
        answer = None
        if response_format is not None:
            if not hasattr(response_format, "model_json_schema"):
                raise TypeError(f"response_format must be a pydantic model class, got "
                                f"{response_format!r}")
            answer = _answer_tool(response_format, {t.get("name") for t in wire_tools})
            if tool_choice is None:
                tool_choice = ({"type": "any"} if wire_tools
                               else {"type": "tool", "name": answer["name"]})
            wire_tools.append(answer)
        if wire_tools:
            kw["tools"] = wire_tools
        choice = _anthropic_tool_choice(tool_choice) if tool_choice is not None else None
        if self.parallel_tool_calls is False and wire_tools:
            choice = dict(choice or {"type": "auto"})
            if choice.get("type") != "none":
                choice["disable_parallel_tool_use"] = True
        if choice is not None:
            kw["tool_choice"] = choice
        if stream:
            kw["stream"] = True
        return kw, (answer["name"] if answer else None)

    # -- ChatModel -------------------------------------------------------------------------------

    def _generate(self, messages: list[Message], *, tools: list[Any] | None,
                  tool_choice: Any, response_format: Any) -> AIMessage:
        kw, answer = self._request(messages, tools, tool_choice, response_format, stream=False)
        return self._from_message(self._call(kw), answer, response_format)

    async def _agenerate(self, messages: list[Message], *, tools: list[Any] | None,
                         tool_choice: Any, response_format: Any) -> AIMessage:
        kw, answer = self._request(messages, tools, tool_choice, response_format, stream=False)
        return self._from_message(await self._acall(kw), answer, response_format)

    def _stream(self, messages: list[Message], *, tools: list[Any] | None, tool_choice: Any,
                response_format: Any) -> Iterator[AIMessageChunk]:
        kw, answer = self._request(messages, tools, tool_choice, response_format, stream=True)
        yield from self._sdk_stream(kw, lambda: _StreamState(answer))

    async def _astream(self, messages: list[Message], *, tools: list[Any] | None,
                       tool_choice: Any, response_format: Any) -> AsyncIterator[AIMessageChunk]:
        kw, answer = self._request(messages, tools, tool_choice, response_format, stream=True)
        async for chunk in self._sdk_astream(kw, lambda: _StreamState(answer)):
            yield chunk

    def _from_message(self, resp: Any, answer: str | None, response_format: Any) -> AIMessage:
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in resp.content or ():
            kind = getattr(block, "type", None)
            if kind == "text":
                texts.append(block.text)
            elif kind == "tool_use":
                args = block.input if isinstance(block.input, dict) else {
                    RAW_ARGS: block.input if isinstance(block.input, str)
                    else json.dumps(block.input)}
                calls.append(ToolCall(id=block.id, name=block.name, args=args))
        content, parsed = "".join(texts), None
        if answer is not None:
            given = [c for c in calls if c.name == answer]
            if given:  # the answer is final: its JSON is the content, the forced call is hidden
                content = json.dumps(given[0].args)
                parsed = parse_structured(content, response_format)
                calls = []
        return AIMessage(content=content, tool_calls=calls,
                         usage=_usage(resp.usage), model=resp.model or self.model,
                         finish_reason=resp.stop_reason, parsed=parsed)


class _StreamState:
    """Turns the Messages API's raw stream events into :class:`AIMessageChunk` s.

    ``message_start`` carries the input tokens, ``message_delta`` the (cumulative) output tokens
    and the stop reason: one usage chunk is sent at the end. ``tool_use`` blocks are numbered
    0, 1, ... in their order (text blocks do not count). In structured mode the answer tool's
    ``input_json_delta`` pieces are sent as ``content`` and text is held back (sent at the end
    only if the model did not answer through the tool).
    """

    def __init__(self, answer: str | None) -> None:
        self.id = new_id()
        self.answer = answer
        self.answered = False
        self.answer_blocks: set[int] = set()
        self.tools: dict[int, int] = {}  # content block index -> tool-call ordinal
        self.held: list[str] = []
        self.input_tokens = 0
        self.output_tokens = 0
        self.finish: str | None = None

    def _chunk(self, **kw: Any) -> AIMessageChunk:
        return AIMessageChunk(id=self.id, **kw)

    def _text(self, text: str) -> Iterator[AIMessageChunk]:
        if not text:
            return
        if self.answer is not None:
            self.held.append(text)
        else:
            yield self._chunk(content=text)

    def feed(self, event: Any) -> Iterator[AIMessageChunk]:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            self.input_tokens, self.output_tokens = _token_counts(event.message.usage,
                                                                  0, 0)
        elif kind == "content_block_start":
            block = event.content_block
            if block.type == "text":
                yield from self._text(block.text)
            elif block.type == "tool_use":
                if self.answer is not None and block.name == self.answer:
                    self.answered = True
                    self.answer_blocks.add(event.index)
                else:
                    n = self.tools[event.index] = len(self.tools)
                    yield self._chunk(tool_call_chunks=[ToolCallChunk(
                        index=n, id=block.id, name=block.name, args="")])
        elif kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                yield from self._text(delta.text)
            elif delta.type == "input_json_delta":
                if event.index in self.answer_blocks:
                    if delta.partial_json:
                        yield self._chunk(content=delta.partial_json)
                elif event.index in self.tools:
                    yield self._chunk(tool_call_chunks=[ToolCallChunk(
                        index=self.tools[event.index], args=delta.partial_json or "")])
        elif kind == "message_delta":
            self.finish = event.delta.stop_reason or self.finish
            if getattr(event, "usage", None) is not None:
                self.input_tokens, self.output_tokens = _token_counts(
                    event.usage, self.input_tokens, self.output_tokens)

    def end(self) -> Iterator[AIMessageChunk]:
        if self.held and not self.answered:
            yield self._chunk(content="".join(self.held))
        yield self._chunk(usage=Usage(input_tokens=self.input_tokens,
                                      output_tokens=self.output_tokens),
                          finish_reason=self.finish)


# -- conversions ---------------------------------------------------------------------------------

def _token_counts(u: Any, input_tokens: int, output_tokens: int) -> tuple[int, int]:
    """(input, output) from a usage object; fields it lacks (None) keep the values given.

    Input counts cache writes and reads too: they are part of the prompt.
    """
    base = getattr(u, "input_tokens", None)
    if base is not None:
        input_tokens = base + (getattr(u, "cache_creation_input_tokens", None) or 0) + (
            getattr(u, "cache_read_input_tokens", None) or 0)
    out = getattr(u, "output_tokens", None)
    if out is not None:
        output_tokens = out
    return input_tokens, output_tokens


def _usage(u: Any) -> Usage | None:
    if u is None:
        return None
    i, o = _token_counts(u, 0, 0)
    return Usage(input_tokens=i, output_tokens=o)


def to_anthropic_messages(messages: list[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """``(system, messages)`` for the Messages API (see the module doc for the rules)."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for m in messages:
        if isinstance(m, SystemMessage):
            if m.content:
                system.append(m.content)
            continue
        blocks: list[dict[str, Any]] = []
        if isinstance(m, ToolMessage):
            role = "user"
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id}
            if m.content:
                result["content"] = m.content
            if m.status == "error":
                result["is_error"] = True
            blocks.append(result)
        elif isinstance(m, AIMessage):
            role = "assistant"
            if m.content:
                blocks.append({"type": "text", "text": m.content})
            for c in m.tool_calls:
                blocks.append({"type": "tool_use", "id": c.id, "name": c.name,
                               "input": _wire_input(c)})
        elif isinstance(m, HumanMessage) or m.role == "user":
            role = "user"
            if m.content:
                blocks.append({"type": "text", "text": m.content})
        else:  # pragma: no cover - every message type is handled above
            raise TypeError(f"cannot send {type(m).__name__} messages to Anthropic")
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    for msg in out:
        if msg["role"] == "user":  # tool results first in their turn
            msg["content"].sort(key=lambda b: b.get("type") != "tool_result")
    if out and out[-1]["role"] == "assistant":  # a prefill may not end with whitespace
        last = out[-1]["content"]
        if last and last[-1].get("type") == "text":
            last[-1]["text"] = last[-1]["text"].rstrip()
            if not last[-1]["text"]:
                last.pop()
        if not last:
            out.pop()
    for msg in out:  # a lone text block reads better as a plain string
        blocks = msg["content"]
        if len(blocks) == 1 and blocks[0].get("type") == "text":
            msg["content"] = blocks[0]["text"]
    return ("\n\n".join(system) or None), out


def _wire_input(call: ToolCall) -> dict[str, Any]:
    """A past call's ``input`` as the API takes it back: its arguments; for arguments that were
    broken JSON (kept as ``{"__raw__": text}``, never sent), an empty object — the call's
    tool result (an error saying the JSON was broken, and quoting it) tells the model why."""
    return {} if call.raw_args is not None else call.args


def _anthropic_tool(t: Any) -> dict[str, Any]:
    if hasattr(t, "to_anthropic"):
        return t.to_anthropic()
    if isinstance(t, dict):
        if "input_schema" in t:
            return t
        spec = t.get("function") if t.get("type") == "function" else t
        if isinstance(spec, dict) and "name" in spec and ("parameters" in spec
                                                            or t.get("type") == "function"):
            out = {"name": spec["name"], "input_schema": spec.get("parameters")
                   or {"type": "object", "properties": {}}}
            if spec.get("description"):
                out["description"] = spec["description"]
            return out
        return t  # a server tool ({"type": "web_search_...", ...}): the API decides
    raise TypeError(f"a tool must be a graphflow Tool (with .to_anthropic()) or a dict in "
                    f"Anthropic's format, got {type(t).__name__} {t!r:.60}")


def _anthropic_tool_choice(choice: Any) -> dict[str, Any]:
    if isinstance(choice, str):
        if choice in ("auto", "any", "none"):
            return {"type": choice}
        if choice == "required":
            return {"type": "any"}
        return {"type": "tool", "name": choice}
    if isinstance(choice, dict):
        if choice.get("type") == "function":  # OpenAI's format
            return {"type": "tool", "name": (choice.get("function") or {}).get("name")}
        return choice
    name = getattr(choice, "name", None)
    if isinstance(name, str):
        return {"type": "tool", "name": name}
    raise TypeError(f"tool_choice must be 'auto', 'any', 'none', a tool name, a tool or a "
                    f"dict, got {choice!r:.60}")


def _answer_tool(response_format: Any, taken: set[Any]) -> dict[str, Any]:
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", response_format.__name__)[:60] or "answer"
    while name in taken:
        name += "_"
    doc = (response_format.__doc__ or "").strip()
    if doc.startswith(f"{response_format.__name__}("):  # pydantic's generated docstring
        doc = ""
    description = ("Give your final answer by calling this tool: its input is the answer, "
                   "as structured data." + (f" {doc}" if doc else ""))
    schema = response_format.model_json_schema()
    return {"name": name, "description": description[:1024], "input_schema": schema}
