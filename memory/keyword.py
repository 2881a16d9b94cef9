"""Keyword search with SQLite FTS5 (BM25), and a re-ranker for identifiers."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["KeywordIndex", "fts_query", "identifier_boost"]

_WORD = re.compile(r"\w+", re.UNICODE)
# very common words add noise to a BM25 OR-query
_COMMON = ("a an and are as at be by did do does for from has have how i in is it its me my of on "
           "or our so that the their them they this to was we were what when where which who why "
           "will with you your")
STOPWORDS = frozenset(_COMMON.split(" "))


def fts_query(text: str) -> str | None:
    """An FTS5 query matching any of the text's words (each quoted: no FTS syntax gets in)."""
    words = [w for w in dict.fromkeys(m.group().lower() for m in _WORD.finditer(text))
             if w not in STOPWORDS]
    if not words:
        return None
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


_IDENTIFIER = re.compile(r"\b(?=[\w-]*\d)[\w-]*[A-Za-z\d][\w-]*\b")


def identifier_boost(query: str, hits: list[Any]) -> list[Any]:
    """A re-ranker (``search(..., rerank=identifier_boost)``): hits containing, verbatim, an
    identifier of the query (a token with a digit: ``INC-20931``, ``E-4711``, ``2025-0147``)
    move ahead of the others, keeping their order otherwise."""
    wanted = {m.group().lower() for m in _IDENTIFIER.finditer(query)}
    if not wanted:
        return hits

    def has(hit: Any) -> bool:
        found = {m.group().lower() for m in _IDENTIFIER.finditer(hit.text)}
        return bool(wanted & found)

    return sorted(hits, key=lambda h: not has(h))  # stable: ties keep the search's order


class KeywordIndex:
    """An FTS5 table of ``(id, text)`` in a SQLite file (or in memory), ranked by BM25."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self._conn = sqlite3.connect(self.path, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._conn:
            self._conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS docs USING "
                               "fts5(id UNINDEXED, text, tokenize='porter unicode61')")

    def upsert(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        with self._lock, self._conn:
            self._conn.executemany("DELETE FROM docs WHERE id = ?", [(i,) for i in ids])
            self._conn.executemany("INSERT INTO docs (id, text) VALUES (?, ?)",
                                   list(zip(ids, texts, strict=True)))

    def delete(self, ids: Iterable[str]) -> None:
        with self._lock, self._conn:
            self._conn.executemany("DELETE FROM docs WHERE id = ?", [(i,) for i in ids])

    def clear(self) -> None:
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM docs")

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM docs").fetchone()[0])

    def search(self, text: str, k: int) -> list[tuple[str, float]]:
        """Best ``k`` ``(id, score)`` for the words of ``text`` (score: -BM25, higher is better)."""
        query = fts_query(text)
        if query is None:
            return []
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, bm25(docs) FROM docs WHERE docs MATCH ? ORDER BY bm25(docs) LIMIT ?",
                (query, k)).fetchall()
        return [(i, -float(s)) for i, s in rows]

    def close(self) -> None:
        self._conn.close()
