"""Caches of node results, for nodes added with a :class:`~graphflow.CachePolicy`.

Give one to ``compile(cache=...)``: :class:`InMemoryCache` (this process) or
:class:`SqliteCache` (a SQLite file, shared by processes and kept across restarts). A node with
a cache policy whose input (its cache key) was seen within the policy's ``ttl`` is not run: its
stored outcome (its writes, and where it routed) is used instead. Entries are the checkpoint
encoding (JSON with tags), never pickle; they are keyed by the graph's and the node's name and
the input's key, so two graphs of the same name sharing a cache share entries.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path

__all__ = ["BaseCache", "InMemoryCache", "SqliteCache"]


class BaseCache(ABC):
    """Where node results are cached: ``get``/``set`` of bytes under ``(namespace, key)``."""

    @abstractmethod
    def get(self, namespace: str, key: str) -> bytes | None:
        """The entry, or None if there is none or it expired."""

    @abstractmethod
    def set(self, namespace: str, key: str, value: bytes, ttl: float | None) -> None:
        """Store an entry for ``ttl`` seconds (None: until cleared)."""

    @abstractmethod
    def clear(self, namespace: str | None = None) -> None:
        """Forget every entry (of ``namespace`` only, if given)."""


class InMemoryCache(BaseCache):
    """A cache in this process's memory (thread-safe)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[bytes, float | None]] = {}
        self._lock = threading.Lock()

    def get(self, namespace: str, key: str) -> bytes | None:
        with self._lock:
            found = self._entries.get((namespace, key))
            if found is None:
                return None
            value, expires = found
            if expires is not None and expires <= time.time():
                del self._entries[(namespace, key)]
                return None
            return value

    def set(self, namespace: str, key: str, value: bytes, ttl: float | None) -> None:
        with self._lock:
            self._entries[(namespace, key)] = (value, None if ttl is None else time.time() + ttl)

    def clear(self, namespace: str | None = None) -> None:
        with self._lock:
            if namespace is None:
                self._entries.clear()
            else:
                for k in [k for k in self._entries if k[0] == namespace]:
                    del self._entries[k]


class SqliteCache(BaseCache):
    """A cache in a SQLite file (WAL mode): shared by the processes that open the same file,
    and kept across restarts. ``path=":memory:"`` keeps it in this process."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        import sqlite3

        self.path = str(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                     timeout=30)
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS graphflow_cache (ns TEXT NOT NULL, key TEXT NOT NULL, "
            "value BLOB NOT NULL, expires REAL, PRIMARY KEY (ns, key))")

    def get(self, namespace: str, key: str) -> bytes | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT value FROM graphflow_cache WHERE ns = ? AND key = ? "
                "AND (expires IS NULL OR expires > ?)", (namespace, key, time.time())).fetchone()
        return None if row is None else bytes(row[0])

    def set(self, namespace: str, key: str, value: bytes, ttl: float | None) -> None:
        expires = None if ttl is None else time.time() + ttl
        with self._lock:
            self._conn.execute("DELETE FROM graphflow_cache WHERE expires <= ?", (time.time(),))
            self._conn.execute(
                "INSERT OR REPLACE INTO graphflow_cache (ns, key, value, expires) "
                "VALUES (?, ?, ?, ?)", (namespace, key, value, expires))

    def clear(self, namespace: str | None = None) -> None:
        with self._lock:
            if namespace is None:
                self._conn.execute("DELETE FROM graphflow_cache")
            else:
                self._conn.execute("DELETE FROM graphflow_cache WHERE ns = ?", (namespace,))

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()
