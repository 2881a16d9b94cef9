"""Chat models: the :class:`ChatModel` base, :class:`ScriptedModel` for tests and offline use,
and the OpenAI and Anthropic models on their official SDKs (``chat_model("openai:gpt-4o-mini")``).
"""

from typing import TYPE_CHECKING, Any

from .base import ChatModel, StructuredOutputError
from .scripted import ScriptedModel

if TYPE_CHECKING:
    from .anthropic_chat import AnthropicChat
    from .openai_chat import OpenAIChat
    from .resilience import (
        CircuitBreaker,
        CircuitOpenError,
        MissingAPIKeyError,
        RetryConfig,
        is_retryable,
    )
    from .tokens import count_tokens

__all__ = [
    "AnthropicChat",
    "ChatModel",
    "CircuitBreaker",
    "CircuitOpenError",
    "MissingAPIKeyError",
    "OpenAIChat",
    "RetryConfig",
    "ScriptedModel",
    "StructuredOutputError",
    "chat_model",
    "count_tokens",
    "is_retryable",
]

_LAZY = {"OpenAIChat": ".openai_chat", "AnthropicChat": ".anthropic_chat",
         "count_tokens": ".tokens",
         **dict.fromkeys(["CircuitBreaker", "CircuitOpenError", "MissingAPIKeyError",
                          "RetryConfig", "is_retryable"], ".resilience")}


def __getattr__(name: str) -> Any:  # the SDKs, tiktoken and tenacity load on first use
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'graphflow.models' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module, __name__), name)


def chat_model(spec: str, **kwargs: Any) -> ChatModel:
    """A chat model from ``"provider:model"``: ``openai:...``, ``anthropic:...``, ``scripted``.

    Keyword arguments go to the model's constructor (``base_url=``, ``api_key=``, ...). API keys
    come from ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY`` unless given.
    """
    provider, _, model = spec.partition(":")
    if provider == "openai":
        return __getattr__("OpenAIChat")(model or "gpt-4o-mini", **kwargs)
    if provider == "anthropic":
        return __getattr__("AnthropicChat")(model or "claude-haiku-4-5", **kwargs)
    if provider == "scripted":
        return ScriptedModel(kwargs.pop("replies", []), **kwargs)
    raise ValueError(f"unknown model provider {provider!r} in {spec!r}: use 'openai:MODEL', "
                     f"'anthropic:MODEL' or 'scripted'")
