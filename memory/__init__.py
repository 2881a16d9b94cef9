"""graphflow.memory — memory as graph nodes: conversation windows, vector memory on chromadb,
stores, episodes, sessions, memory nodes and tools.

Importing this package is cheap: chromadb, numpy and PyTorch load when a feature first needs
them (``VectorMemory`` needs ``pip install 'graphflow[memory]'``, ``MiniLMEmbeddings``
``pip install 'graphflow[embeddings]'``).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import MemoryHit, Prepares, Searchable
    from .chunking import split_text
    from .conversation import ConversationMemory, trim_messages
    from .embeddings import (
        Embeddings,
        FunctionEmbeddings,
        MiniLMEmbeddings,
        OpenAIEmbeddings,
        as_embeddings,
    )
    from .episodic import Episode, EpisodicMemory
    from .extraction import MemoryDecision, MemoryExtractor
    from .hybrid import HybridMemory
    from .keyword import KeywordIndex
    from .nodes import RecallNode, RememberNode, memory_tools
    from .sessions import KeepPinned, Session, SessionManager, SlidingWindow, SummarizeOld
    from .store import BaseStore, Item, PostgresStore, SqliteStore, StoreMemory
    from .vector import VectorMemory

__all__ = [
    "BaseStore",
    "ConversationMemory",
    "Embeddings",
    "Episode",
    "EpisodicMemory",
    "FunctionEmbeddings",
    "HybridMemory",
    "Item",
    "KeepPinned",
    "KeywordIndex",
    "MemoryDecision",
    "MemoryExtractor",
    "MemoryHit",
    "MiniLMEmbeddings",
    "OpenAIEmbeddings",
    "PostgresStore",
    "Prepares",
    "RecallNode",
    "RememberNode",
    "Searchable",
    "Session",
    "SessionManager",
    "SlidingWindow",
    "SqliteStore",
    "StoreMemory",
    "SummarizeOld",
    "VectorMemory",
    "as_embeddings",
    "memory_tools",
    "split_text",
    "trim_messages",
]

_WHERE = {
    "MemoryHit": ".base", "Prepares": ".base", "Searchable": ".base",
    "split_text": ".chunking",
    "ConversationMemory": ".conversation", "trim_messages": ".conversation",
    "Embeddings": ".embeddings", "FunctionEmbeddings": ".embeddings",
    "MiniLMEmbeddings": ".embeddings", "OpenAIEmbeddings": ".embeddings",
    "as_embeddings": ".embeddings",
    "Episode": ".episodic", "EpisodicMemory": ".episodic",
    "MemoryDecision": ".extraction", "MemoryExtractor": ".extraction",
    "HybridMemory": ".hybrid",
    "KeywordIndex": ".keyword",
    "RecallNode": ".nodes", "RememberNode": ".nodes", "memory_tools": ".nodes",
    "KeepPinned": ".sessions", "Session": ".sessions", "SessionManager": ".sessions",
    "SlidingWindow": ".sessions", "SummarizeOld": ".sessions",
    "BaseStore": ".store", "Item": ".store", "PostgresStore": ".store", "SqliteStore": ".store",
    "StoreMemory": ".store",
    "VectorMemory": ".vector",
}


def __getattr__(name: str) -> Any:  # each feature loads on first use
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'graphflow.memory' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
