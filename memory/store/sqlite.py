""":class:`SqliteStore`: the embedded store (a SQLite file, or ``":memory:"``)."""

from __future__ import annotations

import array
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .base import BaseStore, Row, _score_numpy, under

__all__ = ["SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS store_items (
    ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, expires_at REAL,
    PRIMARY KEY (ns, key));
CREATE INDEX IF NOT EXISTS store_items_updated ON store_items (updated_at);
CREATE TABLE IF NOT EXISTS store_vectors (
    ns TEXT NOT NULL, key TEXT NOT NULL, field TEXT NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (ns, key, field));
"""


def _under(prefix: str) -> tuple[str, tuple[Any, ...]]:
    return under(prefix, "?")


class SqliteStore(BaseStore):
    """A store in a SQLite file (WAL mode), vectors scored with numpy.

    Args:
        path: the database file (created), or ``":memory:"``.
        embeddings, index, ttl: see :class:`BaseStore`.
    """

    def __init__(self, path: str | Path = ":memory:", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(_SCHEMA)

    def _write(self, row: Row, vectors: list[tuple[str, list[float]]] | None) -> None:
        ns, key = row[0], row[1]
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                c.execute("INSERT OR REPLACE INTO store_items VALUES (?, ?, ?, ?, ?, ?)", row)
                if vectors is not None:
                    c.execute("DELETE FROM store_vectors WHERE ns = ? AND key = ?", (ns, key))
                    c.executemany("INSERT INTO store_vectors VALUES (?, ?, ?, ?)", [
                        (ns, key, name, array.array("f", v).tobytes()) for name, v in vectors])
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def _read(self, ns: str, key: str) -> Row | None:
        with self._lock:
            return self._conn.execute("SELECT * FROM store_items WHERE ns = ? AND key = ?",
                                      (ns, key)).fetchone()

    def _read_many(self, pairs: Sequence[tuple[str, str]]) -> list[Row]:
        if not pairs:
            return []
        cond = " OR ".join(["(ns = ? AND key = ?)"] * len(pairs))
        with self._lock:
            return self._conn.execute(f"SELECT * FROM store_items WHERE {cond}",
                                      [x for p in pairs for x in p]).fetchall()

    def _remove(self, ns: str, key: str) -> None:
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            c.execute("DELETE FROM store_items WHERE ns = ? AND key = ?", (ns, key))
            c.execute("DELETE FROM store_vectors WHERE ns = ? AND key = ?", (ns, key))
            c.execute("COMMIT")

    def _rows(self, prefix: str) -> Iterator[Row]:
        cond, params = _under(prefix)
        with self._lock:
            rows = self._conn.execute(f"SELECT * FROM store_items WHERE {cond} "
                                      f"ORDER BY updated_at DESC", params).fetchall()
        yield from rows

    def _ranked(self, prefix: str, vector: list[float]) -> Iterator[tuple[str, str, float]]:
        cond, params = _under(prefix)
        with self._lock:
            rows = self._conn.execute(f"SELECT ns, key, vector FROM store_vectors WHERE {cond}",
                                      params).fetchall()
        yield from _score_numpy(rows, vector)

    def _namespaces(self, prefix: str, now: float) -> list[str]:
        cond, params = _under(prefix)
        with self._lock:
            return [r[0] for r in self._conn.execute(
                f"SELECT DISTINCT ns FROM store_items WHERE {cond} AND (expires_at IS NULL "
                f"OR expires_at > ?)", (*params, now))]

    def _sweep(self, now: float) -> int:
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            c.execute("DELETE FROM store_vectors WHERE (ns, key) IN (SELECT ns, key FROM "
                      "store_items WHERE expires_at IS NOT NULL AND expires_at <= ?)", (now,))
            n = c.execute("DELETE FROM store_items WHERE expires_at IS NOT NULL AND "
                          "expires_at <= ?", (now,)).rowcount
            c.execute("COMMIT")
            return n

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"
