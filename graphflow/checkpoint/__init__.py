"""Checkpointers: where threads keep their state between supersteps and between runs.

``MemoryCheckpointer`` (in-process), ``SqliteCheckpointer(path)`` (a SQLite file in WAL mode, the
embedded default) and ``PostgresCheckpointer(dsn)`` (``pip install "graphflow[postgres]"``).
Stored values are JSON with tagged types; ``register_type(cls)`` allows a class to be stored.
"""

from typing import TYPE_CHECKING, Any

from .base import Checkpoint, Checkpointer, PendingWrite, StateSnapshot
from .memory import MemoryCheckpointer

if TYPE_CHECKING:
    from ._sql import CorruptCheckpointError
    from .postgres import PostgresCheckpointer
    from .serde import SerializationError, register_type
    from .sqlite import SqliteCheckpointer

__all__ = [
    "Checkpoint",
    "Checkpointer",
    "CorruptCheckpointError",
    "MemoryCheckpointer",
    "PendingWrite",
    "PostgresCheckpointer",
    "SerializationError",
    "SqliteCheckpointer",
    "StateSnapshot",
    "register_type",
]

_LAZY = {
    "CorruptCheckpointError": "._sql",
    "PostgresCheckpointer": ".postgres",
    "SerializationError": ".serde",
    "SqliteCheckpointer": ".sqlite",
    "register_type": ".serde",
}


def __getattr__(name: str) -> Any:  # the SQL stores and serde load on first use
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'graphflow.checkpoint' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module, __name__), name)
