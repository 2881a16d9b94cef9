""":class:`OpenAIChat`: OpenAI's Chat Completions API on the official ``openai`` SDK.

Works with OpenAI and with any OpenAI-compatible server (vLLM, Ollama, llama.cpp, LiteLLM, ...)
through ``base_url``. Retries and the circuit breaker are graphflow's
(:mod:`graphflow.models.resilience`); the SDK's own retries are off (``max_retries=0``).

Structured output: ``invoke(..., response_format=SomePydanticModel)`` asks for
``{"type": "json_schema", "json_schema": {"name", "schema", "strict": true}}`` with the model's
JSON schema made strict (every property required, ``additionalProperties: false``, ``$ref``
siblings inlined, ``oneOf`` as ``anyOf``). A model that strict mode cannot express (a free-form
``dict[str, X]`` field) — or ``structured_output="json_object"``, for servers without
``json_schema`` support — falls back to ``{"type": "json_object"}`` plus a system instruction
carrying the schema. Either way the parsed instance is on ``AIMessage.parsed``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

try:
    import openai
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("OpenAIChat needs the openai SDK, a dependency of graphflow: "
                      "pip install openai") from exc

from ..messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolCallChunk,
    ToolMessage,
    Usage,
    args_from_json,
    new_id,
    raw_args,
)
from .base import StructuredOutputError
from .resilience import (
    CircuitBreaker,
    RetryConfig,
)
from .sdk_model import SDKChatModel

__all__ = ["OpenAIChat", "strict_json_schema"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIChat(SDKChatModel):
    """A chat model on OpenAI's Chat Completions API.

    Args:
        model: the model name (``"gpt-4o-mini"``, or whatever an OpenAI-compatible server
            serves).
        api_key: default: ``$OPENAI_API_KEY``; neither -> :class:`MissingAPIKeyError`.
        base_url: an OpenAI-compatible endpoint, e.g. ``"http://127.0.0.1:8000/v1"``
            (default: the SDK's, i.e. ``$OPENAI_BASE_URL`` or api.openai.com).
        timeout: seconds per HTTP attempt.
        retry: :class:`RetryConfig` (429, 5xx, timeouts, connection errors; never other 4xx).
        breaker: a :class:`CircuitBreaker`; ``None``: the one shared by every model on this
            base URL; ``False``: none.
        price: ``(input, output)`` per million tokens, for the run's cost totals.
        client / async_client: ready-made ``openai.OpenAI`` / ``openai.AsyncOpenAI`` clients
            (their own retries are turned off on a copy).
        parallel_tool_calls: sent as ``parallel_tool_calls`` when tools are given (``None``:
            the API's default, which allows them).
        structured_output: ``"json_schema"`` (strict, default) or ``"json_object"``.
        stream_usage: send ``stream_options={"include_usage": True}`` when streaming, so
            streamed answers carry usage too (turn off for servers that reject it).
        **params: more request parameters for every call (``temperature=0``, ``seed=1``,
            ``max_completion_tokens=...``).
    """

    provider = "openai"
    env_key = "OPENAI_API_KEY"

    def __init__(self, model: str = "gpt-4o-mini", *, api_key: str | None = None,
                 base_url: str | None = None, timeout: float = 60.0,
                 retry: RetryConfig | None = None,
                 breaker: CircuitBreaker | Literal[False] | None = None,
                 price: tuple[float, float] | None = None, client: Any = None,
                 async_client: Any = None, parallel_tool_calls: bool | None = None,
                 structured_output: Literal["json_schema", "json_object"] = "json_schema",
                 stream_usage: bool = True, **params: Any) -> None:
        super().__init__(model, price=price)
        if structured_output not in ("json_schema", "json_object"):
            raise ValueError(f"structured_output must be 'json_schema' or 'json_object', got "
                             f"{structured_output!r}")
        self.parallel_tool_calls = parallel_tool_calls
        self.structured_output = structured_output
        self.stream_usage = stream_usage
        self._connect(api_key=api_key, base_url=base_url, timeout=timeout, retry=retry,
                      breaker=breaker, client=client, async_client=async_client, params=params)

    def _sdk(self) -> tuple[type, type]:
        return openai.OpenAI, openai.AsyncOpenAI

    def _create(self, client: Any) -> Any:
        return client.chat.completions.create

    def _settings_of(self, client: Any) -> dict[str, Any]:
        return {**super()._settings_of(client), "organization": client.organization,
                "project": client.project}

    # -- requests --------------------------------------------------------------------------------

    def _request(self, messages: list[Message], tools: list[Any] | None, tool_choice: Any,
                 response_format: Any, *, stream: bool) -> dict[str, Any]:
        wire = [_to_openai_message(m) for m in messages]
        kw: dict[str, Any] = {"model": self.model, **self._params}
        if tools:
            kw["tools"] = [_openai_tool(t) for t in tools]
            if self.parallel_tool_calls is not None:
                kw["parallel_tool_calls"] = self.parallel_tool_calls
        if tool_choice is not None:
            kw["tool_choice"] = _openai_tool_choice(tool_choice)
        if response_format is not None:
            fmt, instruction = self._response_format(response_format)
            kw["response_format"] = fmt
            if instruction:
                at = 0
                while at < len(wire) and wire[at]["role"] in ("system", "developer"):
                    at += 1
                wire.insert(at, {"role": "system", "content": instruction})
        kw["messages"] = wire
        if stream:
            kw["stream"] = True
            if self.stream_usage:
                kw["stream_options"] = {"include_usage": True}
        return kw

    def _response_format(self, response_format: Any) -> tuple[dict[str, Any], str | None]:
        if not hasattr(response_format, "model_json_schema"):
            raise TypeError(f"response_format must be a pydantic model class (its instance "
                            f"lands on AIMessage.parsed), got {response_format!r:.80}")
        name = re.sub(r"[^a-zA-Z0-9_-]", "_", response_format.__name__)[:64] or "answer"
        if self.structured_output == "json_schema":
            try:
                schema = strict_json_schema(response_format)
            except _NotStrict:
                pass
            else:
                spec: dict[str, Any] = {"name": name, "schema": schema, "strict": True}
                doc = (response_format.__doc__ or "").strip()
                if doc and not doc.startswith(f"{response_format.__name__}("):
                    spec["description"] = doc[:1000]
                return {"type": "json_schema", "json_schema": spec}, None
        schema_text = json.dumps(response_format.model_json_schema(), separators=(",", ":"))
        return {"type": "json_object"}, (
            f"Answer with a single JSON object (no prose, no code fence) that validates "
            f"against this JSON schema for {name}: {schema_text}")

    # -- ChatModel -------------------------------------------------------------------------------

    def _generate(self, messages: list[Message], *, tools: list[Any] | None,
                  tool_choice: Any, response_format: Any) -> AIMessage:
        kw = self._request(messages, tools, tool_choice, response_format, stream=False)
        return self._from_completion(self._call(kw), response_format)

    async def _agenerate(self, messages: list[Message], *, tools: list[Any] | None,
                         tool_choice: Any, response_format: Any) -> AIMessage:
        kw = self._request(messages, tools, tool_choice, response_format, stream=False)
        return self._from_completion(await self._acall(kw), response_format)

    def _stream(self, messages: list[Message], *, tools: list[Any] | None, tool_choice: Any,
                response_format: Any) -> Iterator[AIMessageChunk]:
        kw = self._request(messages, tools, tool_choice, response_format, stream=True)
        yield from self._sdk_stream(kw, lambda: _StreamState())

    async def _astream(self, messages: list[Message], *, tools: list[Any] | None,
                       tool_choice: Any, response_format: Any) -> AsyncIterator[AIMessageChunk]:
        kw = self._request(messages, tools, tool_choice, response_format, stream=True)
        async for chunk in self._sdk_astream(kw, lambda: _StreamState()):
            yield chunk

    def _from_completion(self, resp: Any, response_format: Any) -> AIMessage:
        if not resp.choices:
            raise RuntimeError(f"{self!r}: the API answered with no choices")
        choice = resp.choices[0]
        m = choice.message
        refusal = getattr(m, "refusal", None)
        if refusal and response_format is not None:
            raise StructuredOutputError(f"the model refused to answer in the "
                                        f"{_format_name(response_format)} format: {refusal}")
        calls = [ToolCall(id=c.id or ToolCall(name="x").id, name=c.function.name,
                          args=args_from_json(c.function.arguments))
                 for c in (m.tool_calls or []) if getattr(c, "function", None) is not None]
        return AIMessage(content=m.content or refusal or "",
                         tool_calls=calls, usage=_usage(resp.usage),
                         model=resp.model or self.model, finish_reason=choice.finish_reason)


class _StreamState:
    """Turns ``ChatCompletionChunk`` events into :class:`AIMessageChunk` s."""

    def __init__(self) -> None:
        self.id = new_id()
        self.usage: Usage | None = None

    def feed(self, event: Any) -> Iterator[AIMessageChunk]:
        if getattr(event, "usage", None) is not None:
            self.usage = _usage(event.usage)  # the last one wins (some servers repeat it)
        for choice in event.choices or ():
            if choice.index != 0:
                continue
            delta = choice.delta
            text = (delta.content or "") if delta is not None else ""
            refusal = getattr(delta, "refusal", None) if delta is not None else None
            calls = []
            for c in (getattr(delta, "tool_calls", None) or []) if delta is not None else []:
                fn = c.function
                calls.append(ToolCallChunk(index=c.index, id=c.id,
                                           name=fn.name if fn is not None else None,
                                           args=(fn.arguments or "") if fn is not None else ""))
            if text or refusal or calls or choice.finish_reason:
                yield AIMessageChunk(id=self.id, content=text + (refusal or ""),
                                     tool_call_chunks=calls,
                                     finish_reason=choice.finish_reason)

    def end(self) -> Iterator[AIMessageChunk]:
        if self.usage is not None:
            yield AIMessageChunk(id=self.id, usage=self.usage)


# -- conversions ---------------------------------------------------------------------------------

def _usage(u: Any) -> Usage | None:
    if u is None:
        return None
    return Usage(input_tokens=u.prompt_tokens or 0, output_tokens=u.completion_tokens or 0)


def _dumps_args(args: dict[str, Any]) -> str:
    raw = raw_args(args)
    return raw if raw is not None else json.dumps(args)  # broken JSON: what the model sent


def _to_openai_message(m: Message) -> dict[str, Any]:
    if isinstance(m, ToolMessage):
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content}
    if isinstance(m, AIMessage):
        out: dict[str, Any] = {"role": "assistant"}
        if m.tool_calls:
            out["content"] = m.content or None
            out["tool_calls"] = [{"id": c.id, "type": "function", "function": {
                "name": c.name, "arguments": _dumps_args(c.args)}} for c in m.tool_calls]
        else:
            out["content"] = m.content
    elif isinstance(m, SystemMessage):
        out = {"role": "system", "content": m.content}
    elif isinstance(m, HumanMessage):
        out = {"role": "user", "content": m.content}
    else:
        out = {"role": m.role, "content": m.content}
    if m.name:
        out["name"] = m.name
    return out


def _openai_tool(t: Any) -> dict[str, Any]:
    if hasattr(t, "to_openai"):
        return t.to_openai()
    if isinstance(t, dict):
        if t.get("type") == "function" and "function" in t:
            return t
        if "input_schema" in t:  # Anthropic's format
            return {"type": "function", "function": {
                "name": t["name"], "description": t.get("description", ""),
                "parameters": t["input_schema"]}}
        if "name" in t and "parameters" in t:  # a bare function spec
            return {"type": "function", "function": t}
        return t  # another tool type: the API decides
    raise TypeError(f"a tool must be a graphflow Tool (with .to_openai()) or a dict in OpenAI's "
                    f"format, got {type(t).__name__} {t!r:.60}")


def _openai_tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        if choice in ("auto", "none", "required"):
            return choice
        if choice == "any":
            return "required"
        return {"type": "function", "function": {"name": choice}}
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "tool" and "name" in choice:  # Anthropic's format
            return {"type": "function", "function": {"name": choice["name"]}}
        if kind in ("auto", "none"):
            return kind
        if kind == "any":
            return "required"
        return choice
    name = getattr(choice, "name", None)
    if isinstance(name, str):
        return {"type": "function", "function": {"name": name}}
    raise TypeError(f"tool_choice must be 'auto', 'none', 'required', a tool name, a tool or a "
                    f"dict, got {choice!r:.60}")


def _format_name(fmt: Any) -> str:
    return getattr(fmt, "__name__", None) or repr(fmt)


# -- strict JSON schemas -------------------------------------------------------------------------

class _NotStrict(Exception):
    """The schema cannot be expressed in OpenAI's strict mode."""


def strict_json_schema(model: Any) -> dict[str, Any]:
    """``model``'s JSON schema in the form OpenAI's strict structured outputs accept.

    Every object gets ``additionalProperties: false`` and all its properties in ``required``
    (optional fields stay optional through their ``null`` alternative); ``$ref`` with sibling
    keywords is inlined; ``oneOf`` becomes ``anyOf``; ``default: null`` is dropped. Raises
    ``_NotStrict`` for free-form objects (``dict[str, X]``).
    """
    schema = model.model_json_schema()
    defs = schema.get("$defs") or {}

    def resolve(ref: str) -> dict[str, Any]:
        prefix = "#/$defs/"
        if not ref.startswith(prefix) or ref[len(prefix):] not in defs:
            raise _NotStrict(f"unresolvable $ref {ref!r}")
        return defs[ref[len(prefix):]]

    def fix(node: Any, depth: int = 0) -> Any:
        if depth > 64:
            raise _NotStrict("schema too deep")
        if isinstance(node, list):
            return [fix(x, depth + 1) for x in node]
        if not isinstance(node, dict):
            return node
        node = dict(node)
        if "$ref" in node and len(node) > 1:
            ref = node.pop("$ref")
            node = {**resolve(ref), **node}
        if "oneOf" in node:
            node["anyOf"] = node.pop("oneOf")
            node.pop("discriminator", None)
        if "default" in node and node["default"] is None:
            del node["default"]
        if node.get("type") == "object" or "properties" in node:
            extra = node.get("additionalProperties")
            if extra not in (None, False):
                raise _NotStrict("free-form object (dict) fields are not allowed in strict mode")
            props = node.get("properties") or {}
            node["properties"] = {k: fix(v, depth + 1) for k, v in props.items()}
            node["required"] = list(props)
            node["additionalProperties"] = False
        for key in ("items", "anyOf", "allOf", "prefixItems"):
            if key in node:
                node[key] = fix(node[key], depth + 1)
        if "$defs" in node:
            node["$defs"] = {k: fix(v, depth + 1) for k, v in node["$defs"].items()}
        return node

    return fix(schema)
