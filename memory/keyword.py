"""Keyword search with SQLite FTS5 (BM25), and rank fusion with vector search."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["KeywordIndex", "fts_query", "rrf"]

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


def rrf(rankings: Sequence[Sequence[str]], k: int = 60,
        weights: Sequence[float] | None = None) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: ids by the sum of ``weight / (k + rank)`` over the rankings."""
    scores: dict[str, float] = {}
    for r, ranking in enumerate(rankings):
        w = 1.0 if weights is None else weights[r]
        for rank, item in enumerate(ranking):
            scores[item] = scores.get(item, 0.0) + w / (k + rank + 1)
    return sorted(scores.items(), key=lambda kv: kv[1], reverse=True)


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
