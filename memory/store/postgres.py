""":class:`PostgresStore`: a store in PostgreSQL, vectors in a ``real[]`` column.

Similarity is computed in the database: with the ``vector`` extension (pgvector) when it is
installed in the database (detected at connect: ``SELECT 1 FROM pg_extension WHERE extname =
'vector'``), the arrays are cast to ``vector`` and ordered with its ``<=>`` cosine-distance
operator; without it (Debian 12 ships no pgvector), as the dot product of the normalized arrays
(``unnest``). ``vectors="array"`` forces the second, ``vectors="numpy"`` scores in Python.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from .._extras import require
from .base import BaseStore, Row, _ns, _score_numpy, under

__all__ = ["PostgresStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS graphflow_store_items (
    ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION, PRIMARY KEY (ns, key));
CREATE INDEX IF NOT EXISTS graphflow_store_items_updated ON graphflow_store_items (updated_at);
CREATE TABLE IF NOT EXISTS graphflow_store_vectors (
    ns TEXT NOT NULL, key TEXT NOT NULL, field TEXT NOT NULL, vector REAL[] NOT NULL,
    PRIMARY KEY (ns, key, field));
"""
_PAGE = 128


def _under(prefix: str) -> tuple[str, tuple[Any, ...]]:
    return under(prefix, "%s")


class PostgresStore(BaseStore):
    """A store in PostgreSQL (``pip install 'graphflow[postgres]'``).

    Args:
        dsn: a libpq connection string (``postgresql://user@host:5432/db``).
        vectors: ``"auto"`` (pgvector if installed, else arrays scored in SQL), ``"array"``,
            ``"pgvector"`` (an error if the extension is missing) or ``"numpy"``.
        embeddings, index, ttl: see :class:`BaseStore`.
    """

    def __init__(self, dsn: str, *, vectors: Literal["auto", "array", "pgvector", "numpy"] = "auto",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        psycopg = require("psycopg", "PostgresStore")
        self.dsn = dsn
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute(_SCHEMA)
            has = self._conn.execute(
                "SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is not None
        if vectors == "pgvector" and not has:
            raise ValueError("PostgresStore(vectors='pgvector'): the 'vector' extension is not "
                             "installed in this database (CREATE EXTENSION vector), or use "
                             "vectors='auto'")
        self.vectors = ("pgvector" if has else "array") if vectors == "auto" else vectors

    def _write(self, row: Row, vectors: list[tuple[str, list[float]]] | None) -> None:
        ns, key = row[0], row[1]
        with self._lock, self._conn.transaction():
            self._conn.execute(
                "INSERT INTO graphflow_store_items VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value, "
                "created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, "
                "expires_at = EXCLUDED.expires_at", row)
            if vectors is not None:
                self._conn.execute("DELETE FROM graphflow_store_vectors WHERE ns = %s AND "
                                   "key = %s", (ns, key))
                with self._conn.cursor() as cur:
                    cur.executemany("INSERT INTO graphflow_store_vectors VALUES (%s, %s, %s, %s)",
                                    [(ns, key, name, v) for name, v in vectors])

    def _read(self, ns: str, key: str) -> Row | None:
        with self._lock:
            return self._conn.execute("SELECT * FROM graphflow_store_items WHERE ns = %s AND "
                                      "key = %s", (ns, key)).fetchone()

    def _read_many(self, pairs: Sequence[tuple[str, str]]) -> list[Row]:
        if not pairs:
            return []
        with self._lock:
            return self._conn.execute(
                "SELECT i.* FROM graphflow_store_items i JOIN unnest(%s::text[], %s::text[]) "
                "AS p(ns, key) ON i.ns = p.ns AND i.key = p.key",
                ([p[0] for p in pairs], [p[1] for p in pairs])).fetchall()

    def _remove(self, ns: str, key: str) -> None:
        with self._lock, self._conn.transaction():
            self._conn.execute("DELETE FROM graphflow_store_items WHERE ns = %s AND key = %s",
                               (ns, key))
            self._conn.execute("DELETE FROM graphflow_store_vectors WHERE ns = %s AND key = %s",
                               (ns, key))

    def _rows(self, prefix: str) -> Iterator[Row]:
        cond, params = _under(prefix)
        offset = 0
        while True:
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT * FROM graphflow_store_items WHERE {cond} ORDER BY updated_at DESC, "
                    f"ns, key LIMIT {_PAGE} OFFSET {offset}", params).fetchall()
            yield from rows
            if len(rows) < _PAGE:
                return
            offset += _PAGE

    def _check_dimension(self, cond: str, params: tuple[Any, ...], size: int) -> None:
        with self._lock:
            bad = self._conn.execute(
                f"SELECT ns, key, array_length(vector, 1) FROM graphflow_store_vectors WHERE "
                f"{cond} AND array_length(vector, 1) <> %s LIMIT 1", (*params, size)).fetchone()
        if bad is not None:
            raise ValueError(
                f"store item {_ns(bad[0])!r}/{bad[1]!r} has a {bad[2]}-dimensional vector but "
                f"the query has {size} dimensions: the store was indexed with another "
                f"embedder; re-put its items or use the same embedder")

    def _ranked(self, prefix: str, vector: list[float]) -> Iterator[tuple[str, str, float]]:
        cond, params = _under(prefix)
        if self.vectors == "numpy":
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT ns, key, vector FROM graphflow_store_vectors WHERE {cond}",
                    params).fetchall()
            import array

            yield from _score_numpy([(n, k, array.array("f", v).tobytes()) for n, k, v in rows],
                                    vector)
            return
        self._check_dimension(cond, params, len(vector))
        if self.vectors == "pgvector":
            score = "1 - (vector::vector <=> %s::real[]::vector)"
        else:
            score = "(SELECT sum(a * b) FROM unnest(vector, %s::real[]) AS t(a, b))"
        offset = 0
        while True:
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT ns, key, max({score}) AS score FROM graphflow_store_vectors "
                    f"WHERE {cond} GROUP BY ns, key ORDER BY score DESC, ns, key "
                    f"LIMIT {_PAGE} OFFSET {offset}", (vector, *params)).fetchall()
            for ns, key, s in rows:
                yield ns, key, float(s)
            if len(rows) < _PAGE:
                return
            offset += _PAGE

    def _namespaces(self, prefix: str, now: float) -> list[str]:
        cond, params = _under(prefix)
        with self._lock:
            return [r[0] for r in self._conn.execute(
                f"SELECT DISTINCT ns FROM graphflow_store_items WHERE {cond} AND "
                f"(expires_at IS NULL OR expires_at > %s)", (*params, now))]

    def _sweep(self, now: float) -> int:
        with self._lock, self._conn.transaction():
            self._conn.execute(
                "DELETE FROM graphflow_store_vectors v USING graphflow_store_items i WHERE "
                "v.ns = i.ns AND v.key = i.key AND i.expires_at IS NOT NULL AND "
                "i.expires_at <= %s", (now,))
            cur = self._conn.execute("DELETE FROM graphflow_store_items WHERE expires_at IS NOT "
                                     "NULL AND expires_at <= %s", (now,))
            return cur.rowcount

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"PostgresStore(vectors={self.vectors!r})"
