"""Provider-neutral chat messages and the ``add_messages`` reducer.

``SystemMessage``, ``HumanMessage``, ``AIMessage`` (text, tool calls, usage) and ``ToolMessage``
are pydantic models with a stable ``id``. ``to_message`` accepts ``("user", "hi")`` tuples, plain
strings and ``{"role": ..., "content": ...}`` dicts. ``add_messages`` appends, replaces a message
whose id already exists, and deletes on ``RemoveMessage(id)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from ._random import random_hex

__all__ = [
    "REMOVE_ALL_MESSAGES",
    "AIMessage",
    "AIMessageChunk",
    "AnyMessage",
    "HumanMessage",
    "Message",
    "MessagesState",
    "RemoveMessage",
    "SystemMessage",
    "ToolCall",
    "ToolCallChunk",
    "ToolMessage",
    "Usage",
    "add_messages",
    "all_messages",
    "args_from_json",
    "merge_chunks",
    "message_kind",
    "new_id",
    "raw_args",
    "repair_tool_calls",
    "starts_with",
    "to_message",
    "to_messages",
]

REMOVE_ALL_MESSAGES = "__remove_all__"


def new_id() -> str:
    """A new message id: 128 random bits in hex, like a uuid4's but a fraction of the cost."""
    return random_hex(128)


class _ReadsAsDict:
    """``get`` over ``__getitem__``: for models that LangChain's users read as dicts."""

    def get(self, key: str, default: Any = None) -> Any:
        """``obj[key]``, or ``default`` for a key it does not have."""
        try:
            return self[key]  # type: ignore[index]
        except KeyError:
            return default


class Usage(_ReadsAsDict, BaseModel):
    """Tokens a model call consumed."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __getitem__(self, key: str) -> int:
        """``usage["input_tokens"]``: read like LangChain's ``usage_metadata`` dict too."""
        if key in ("input_tokens", "output_tokens", "total_tokens"):
            return getattr(self, key)  # type: ignore[no-any-return]
        raise KeyError(key)

    def __add__(self, other: Usage) -> Usage:
        return Usage(input_tokens=self.input_tokens + other.input_tokens,
                     output_tokens=self.output_tokens + other.output_tokens)


RAW_ARGS = "__raw__"


class ToolCall(_ReadsAsDict, BaseModel):
    """A tool the model asks to call, with its arguments.

    Readable as a dict too, as LangChain's tool calls are: ``call["name"]``, ``call["args"]``,
    ``call["id"]`` (and ``call["type"] == "tool_call"``). Arguments that were not a JSON object
    (a model's broken JSON) are kept as ``{"__raw__": text}`` so that the tool can report the
    problem; :attr:`raw_args` is that text.
    """

    id: str = Field(default_factory=lambda: "call_" + random_hex(96))
    name: str
    args: dict[str, Any] = Field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        if key == "type":
            return "tool_call"
        if key in ("id", "name", "args"):
            return getattr(self, key)
        raise KeyError(key)

    def keys(self) -> tuple[str, ...]:
        """The keys of the dict form (``dict(call)``, ``{**call}``)."""
        return ("name", "args", "id", "type")

    @property
    def raw_args(self) -> str | None:
        """The model's arguments text when it was not a JSON object, else None."""
        return raw_args(self.args)


def raw_args(args: dict[str, Any]) -> str | None:
    """The text kept under ``"__raw__"`` when ``args`` is a broken-JSON marker, else None."""
    if len(args) == 1 and RAW_ARGS in args and isinstance(args[RAW_ARGS], str):
        return args[RAW_ARGS]  # type: ignore[no-any-return]
    return None


def args_from_json(text: str | None) -> dict[str, Any]:
    """A tool call's arguments from the model's JSON text: the object, or the marker
    ``{"__raw__": text}`` when the text is not a JSON object."""
    raw = text or "{}"
    try:
        args = json.loads(raw)
    except json.JSONDecodeError:
        return {RAW_ARGS: raw}  # the model sent broken JSON; the tool reports it
    return args if isinstance(args, dict) else {RAW_ARGS: raw}


class Message(BaseModel):
    """Base of every chat message. The content may be given by position, as LangChain's
    messages take it: ``SystemMessage("You are terse.")``."""

    id: str = Field(default_factory=new_id)
    content: str = ""
    name: str | None = None

    def __init__(self, content: Any = None, /, **data: Any) -> None:
        if content is not None:
            if "content" in data:
                raise TypeError(f"{type(self).__name__} got its content twice, by position "
                                f"and as content=")
            data["content"] = content
        super().__init__(**data)

    @property
    def role(self) -> str:
        raise NotImplementedError

    @property
    def text(self) -> str:
        return self.content

    def pretty_repr(self) -> str:
        """The message as LangChain's ``pretty_repr`` shows it: a titled rule, the name, the
        content (and an assistant's tool calls)."""
        title = f" {self.type.title()} Message "  # type: ignore[attr-defined]
        rule = "=" * ((80 - len(title)) // 2)
        head = f"{rule}{title}{rule}{'=' if len(title) % 2 else ''}"
        name = f"\nName: {self.name}" if self.name is not None else ""
        return f"{head}{name}\n\n{self.content}"

    def pretty_print(self) -> None:
        """Print :meth:`pretty_repr` (LangChain's habit, common in LangGraph's docs)."""
        print(self.pretty_repr())


class SystemMessage(Message):
    """Instructions for the model."""

    type: Literal["system"] = "system"

    @property
    def role(self) -> str:
        return "system"


class HumanMessage(Message):
    """What the user said."""

    type: Literal["human"] = "human"

    @property
    def role(self) -> str:
        return "user"


class AIMessage(Message):
    """What the model answered: text and/or tool calls."""

    type: Literal["ai"] = "ai"
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage | None = None
    model: str | None = None
    finish_reason: str | None = None
    parsed: Any = None  # structured output, when a response_format was asked for

    @property
    def role(self) -> str:
        return "assistant"

    def pretty_repr(self) -> str:
        lines = []
        if self.tool_calls:
            lines.append("Tool Calls:")
            for call in self.tool_calls:
                lines += [f"  {call.name} ({call.id})", f" Call ID: {call.id}", "  Args:"]
                lines += [f"    {key}: {value}" for key, value in call.args.items()]
        return (super().pretty_repr().strip() + "\n" + "\n".join(lines)).strip()

    @property
    def usage_metadata(self) -> Usage | None:
        """:attr:`usage` under LangChain's name (``["input_tokens"]`` works on it too)."""
        return self.usage


class ToolMessage(Message):
    """The result of one tool call, sent back to the model."""

    type: Literal["tool"] = "tool"
    tool_call_id: str
    status: Literal["ok", "error"] = "ok"

    @property
    def role(self) -> str:
        return "tool"


AnyMessage = SystemMessage | HumanMessage | AIMessage | ToolMessage


class MessagesState(TypedDict):
    """A state of one key, ``messages``, merged with :func:`add_messages` (LangGraph's
    ``MessagesState``). Extend it with keys of your own::

        class State(MessagesState):
            user_id: str
    """

    messages: Annotated[list[AnyMessage], add_messages]


class RemoveMessage(BaseModel):
    """Returned in an update, deletes the message with ``id`` (``REMOVE_ALL_MESSAGES``: all)."""

    id: str


class ToolCallChunk(BaseModel):
    """A piece of a streamed tool call; ``args`` is a fragment of JSON text."""

    index: int = 0
    id: str | None = None
    name: str | None = None
    args: str = ""


class AIMessageChunk(BaseModel):
    """A piece of a streamed answer."""

    id: str = ""
    content: str = ""
    tool_call_chunks: list[ToolCallChunk] = Field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None


def merge_chunks(chunks: Iterable[AIMessageChunk], *, model: str | None = None) -> AIMessage:
    """The :class:`AIMessage` a stream of chunks adds up to."""
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    usage: Usage | None = None
    finish: str | None = None
    msg_id = ""
    for chunk in chunks:
        msg_id = msg_id or chunk.id
        text.append(chunk.content)
        for c in chunk.tool_call_chunks:
            slot = calls.setdefault(c.index, {"id": None, "name": None, "args": []})
            slot["id"] = slot["id"] or c.id
            slot["name"] = slot["name"] or c.name
            slot["args"].append(c.args)
        if chunk.usage is not None:
            usage = chunk.usage if usage is None else usage + chunk.usage
        finish = chunk.finish_reason or finish
    tool_calls = []
    for index in sorted(calls):
        slot = calls[index]
        tool_calls.append(ToolCall(id=slot["id"] or ToolCall(name="x").id, name=slot["name"]
                                   or "", args=args_from_json("".join(slot["args"]))))
    return AIMessage(id=msg_id or new_id(), content="".join(text), tool_calls=tool_calls,
                     usage=usage, model=model, finish_reason=finish)


_ROLES: dict[str, type[Message]] = {
    "user": HumanMessage,
    "human": HumanMessage,
    "assistant": AIMessage,
    "ai": AIMessage,
    "system": SystemMessage,
    "tool": ToolMessage,
}


def to_message(value: Any) -> Message | RemoveMessage:
    """A message from a message, a ``(role, text)`` tuple, a string or a ``{"role": ...}`` dict."""
    if isinstance(value, (Message, RemoveMessage)):
        return value
    if isinstance(value, str):
        return HumanMessage(content=value)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        role, content = value
        cls = _ROLES.get(role)
        if cls is None or cls is ToolMessage:
            raise ValueError(f"unknown message role {role!r} in {value!r}; use one of "
                             f"user, assistant, system (tool messages need a tool_call_id)")
        return cls(content=str(content))
    if isinstance(value, dict):
        data = dict(value)
        role = data.pop("role", None) or data.pop("type", None)
        cls = _ROLES.get(str(role))
        if cls is None:
            raise ValueError(f"message dict needs a known 'role', got {value!r}")
        if "tool_call_id" in data and cls is not ToolMessage:
            cls = ToolMessage
        return cls.model_validate(data)
    if type(value).__module__.startswith("langchain_core."):  # a LangChain message
        from .langchain import from_langchain_message

        return from_langchain_message(value)
    raise TypeError(f"cannot turn {type(value).__name__} {value!r:.60} into a message")


def to_messages(values: Any) -> list[Message | RemoveMessage]:
    """``to_message`` over one message-like value or a sequence of them."""
    if isinstance(values, (str, tuple, dict, Message, RemoveMessage)):
        return [to_message(values)]
    values = list(values)
    if all_messages(values):
        return values
    return [to_message(v) for v in values]


_ID = attrgetter("id")
_EXACT: frozenset[type] = frozenset({SystemMessage, HumanMessage, AIMessage, ToolMessage})


def all_messages(items: Sequence[Any]) -> bool:
    """True when every item is one of the four message classes (checked without a Python loop)."""
    return _EXACT.issuperset(map(type, items))


# The list add_messages returned last and its ids: in a conversation each merge's ``left`` is
# the previous merge's result, so its ids need not be gathered again (checked by comparing the
# lists, in C: the same objects, or equal ones).
_MERGED: tuple[list[Message], set[str]] = ([], set())


def add_messages(left: Sequence[Any] | None, right: Any) -> list[Message]:
    """Reducer for a list of messages: append; same id replaces; ``RemoveMessage`` deletes.

    Use it as ``messages: Annotated[list[AnyMessage], add_messages]``.
    """
    global _MERGED
    if type(right) is list and all_messages(right):
        new: list[Any] = right
    else:
        new = to_messages(right)
    current: list[Any] = list(left) if left else []
    merged, merged_ids = _MERGED
    # ``left`` is the list this reducer returned last time: its messages and ids are known
    known = bool(merged) and len(current) == len(merged) and starts_with(current, merged)
    if not known and not all_messages(current):
        current = [to_message(m) for m in current]
    if new is right or all_messages(new):  # no RemoveMessage: usually new ids, appended
        ids = set(merged_ids) if known else set(map(_ID, current))
        if len(ids) == len(current):
            ids.update(map(_ID, new))
            if len(ids) == len(current) + len(new):
                current.extend(new)
                _MERGED = (list(current), ids)
                return current
    index = {m.id: i for i, m in enumerate(current)}
    for item in new:
        if isinstance(item, RemoveMessage):
            if item.id == REMOVE_ALL_MESSAGES:
                current, index = [], {}
                continue
            at = index.get(item.id)
            if at is None:
                raise ValueError(f"RemoveMessage({item.id!r}): no message has that id")
            current[at] = None
            del index[item.id]
            continue
        at = index.get(item.id)
        if at is not None:
            current[at] = item
        else:
            index[item.id] = len(current)
            current.append(item)
    return [m for m in current if m is not None]  # type: ignore[misc]


_KINDS: dict[type, str] = {SystemMessage: "system", HumanMessage: "human", AIMessage: "ai",
                           ToolMessage: "tool"}


def message_kind(msg: Message) -> str:
    """``"system"``, ``"human"``, ``"ai"``, ``"tool"`` (or ``"other"``), by class, subclasses
    included; a dict lookup for the four classes themselves."""
    kind = _KINDS.get(type(msg))
    if kind is None:
        kind = next((k for cls, k in tuple(_KINDS.items()) if isinstance(msg, cls)), "other")
        _KINDS[type(msg)] = kind
    return kind


def repair_tool_calls(history: Sequence[Message]) -> list[Message]:
    """Give every assistant tool call a result, so the history is valid for any provider.

    A call left without a ``ToolMessage`` (an error or an interrupt stopped the tools) gets an
    error result saying so, placed right after the calls' other results.
    """
    if not _has_unanswered_calls(history):
        return list(history)
    out: list[Message] = []
    pending: dict[str, ToolCall] = {}
    for msg in history:
        kind = message_kind(msg)
        if pending and kind != "tool":
            out.extend(_missing(pending))
            pending = {}
        if kind == "tool":
            pending.pop(msg.tool_call_id, None)  # type: ignore[attr-defined]
        out.append(msg)
        if kind == "ai" and msg.tool_calls:  # type: ignore[attr-defined]
            pending = {c.id: c for c in msg.tool_calls}  # type: ignore[attr-defined]
    out.extend(_missing(pending))
    return out


def starts_with(items: Sequence[Any], prefix: list[Any]) -> bool:
    """Whether ``items`` begins with the messages of ``prefix`` (the same objects, or equal
    ones): one list comparison in C, for the memos that spare an agent loop re-reading the
    history it has already seen."""
    if len(items) < len(prefix):
        return False
    head = items[:len(prefix)]
    try:
        return (head if type(head) is list else list(head)) == prefix
    except Exception:  # an odd value's __eq__ failed: no match
        return False


# The history most recently found to have every call answered. An agent asks again with that
# history plus a few messages; when its start equals this one (a C-level list comparison: the
# same objects, or equal ones), only the new tail is scanned.
_ANSWERED: list[Message] = []


def _has_unanswered_calls(history: Sequence[Message]) -> bool:
    """Whether some assistant tool call lacks a result among the tool messages right after it.

    Runs before every model call, so it is written for speed: a known-good prefix is skipped,
    and the scan allocates nothing in the common case of one call per assistant message.
    """
    global _ANSWERED
    known = _ANSWERED
    start = len(known) if known and starts_with(history, known) else 0
    kinds = _KINDS
    one: str | None = None  # the id of an open single call
    many: set[str] | None = None  # the ids of open parallel calls
    for msg in history[start:] if start else history:
        kind = kinds.get(type(msg)) or message_kind(msg)
        if kind == "tool":
            if one is not None:
                if msg.tool_call_id == one:  # type: ignore[attr-defined]
                    one = None
            elif many:
                many.discard(msg.tool_call_id)  # type: ignore[attr-defined]
            continue
        if one is not None or many:
            return True
        if kind == "ai":
            calls = msg.tool_calls  # type: ignore[attr-defined]
            if calls:
                if len(calls) == 1:
                    one = calls[0].id
                else:
                    many = set(map(_ID, calls))
    if one is not None or many:
        return True
    _ANSWERED = list(history)
    return False


def _missing(pending: dict[str, ToolCall]) -> list[ToolMessage]:
    return [ToolMessage(tool_call_id=c.id, name=c.name, status="error",
                        content=f"the call to {c.name!r} did not complete (interrupted or "
                                f"failed before it returned)") for c in pending.values()]


def _register() -> None:
    from .checkpoint.serde import register_type

    for cls in (SystemMessage, HumanMessage, AIMessage, ToolMessage, ToolCall, Usage,
                RemoveMessage, AIMessageChunk, ToolCallChunk):
        register_type(cls, name=f"graphflow.{cls.__name__}")


_register()  # messages are the library's own: always allowed in checkpoints
