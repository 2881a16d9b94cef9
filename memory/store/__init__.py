"""Stores: namespaced key-value memory with semantic search (:class:`SqliteStore`,
:class:`PostgresStore`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import BaseStore, Item, StoreMemory
from .sqlite import SqliteStore

if TYPE_CHECKING:
    from .postgres import PostgresStore

__all__ = ["BaseStore", "Item", "PostgresStore", "SqliteStore", "StoreMemory"]


def __getattr__(name: str) -> Any:  # psycopg loads only for PostgresStore
    if name == "PostgresStore":
        from .postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module 'graphflow.memory.store' has no attribute {name!r}")
