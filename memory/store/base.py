""":class:`BaseStore`: namespaced key-value memory with semantic search, TTL and filters.

A store keeps JSON values (dicts) under ``(namespace, key)``; a namespace is a tuple of labels,
``("users", "u42", "facts")``. Chosen fields of each value (``index=``) are embedded, so
``search(prefix, query="...")`` finds items by meaning. Backends (:class:`SqliteStore`,
:class:`PostgresStore`) implement a handful of row operations; everything else — validation,
TTL, filters, ranking, async twins — is written once here.

Nodes, routers and tools receive the graph's store by declaring a ``store`` parameter (or one
annotated ``BaseStore``): ``g.compile(store=SqliteStore("memory.db"))``.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._durable import content_id, durable, slot_ids
from ..base import MemoryHit
from ..embeddings import Embeddings, as_embeddings

__all__ = ["BaseStore", "Item", "StoreMemory", "matches", "namespace_key", "under"]

SEP = "\x1f"  # between labels in the stored form; labels may not contain control characters
Row = tuple[str, str, str, float, float, float | None]  # ns, key, value, created, updated, expires


@dataclass
class Item:
    """A stored value.

    Attributes:
        namespace: the namespace tuple.
        key: the key within it.
        value: the stored dict.
        created_at, updated_at: Unix times.
        expires_at: Unix time after which the item is gone (None: never).
        score: the similarity to the query, for ``search(query=...)`` results.
    """

    namespace: tuple[str, ...]
    key: str
    value: dict[str, Any]
    created_at: float
    updated_at: float
    expires_at: float | None = None
    score: float | None = field(default=None)


def namespace_key(namespace: Sequence[str] | str, *, prefix: bool = False) -> str:
    """The stored form of a namespace; raises ValueError naming the bad label."""
    if isinstance(namespace, str):
        namespace = (namespace,)
    labels = tuple(namespace)
    if not labels and not prefix:
        raise ValueError("a namespace needs at least one label, e.g. ('users', 'u42')")
    for label in labels:
        if not isinstance(label, str) or not label:
            raise ValueError(f"namespace {labels!r}: labels must be non-empty strings, got "
                             f"{label!r}")
        bad = [c for c in label if ord(c) < 32 or ord(c) == 127]
        if bad:
            raise ValueError(f"namespace {labels!r}: label {label!r} contains the control "
                             f"character {bad[0]!r}; use printable characters only")
    return SEP.join(labels)


def under(prefix: str, placeholder: str) -> tuple[str, tuple[Any, ...]]:
    """SQL condition (SQLite and PostgreSQL alike) and its parameters: the ``ns`` column is the
    stored namespace ``prefix`` or one below it ("" = every namespace)."""
    if not prefix:
        return "TRUE", ()
    p = placeholder
    return f"(ns = {p} OR substr(ns, 1, {p}) = {p})", (prefix, len(prefix) + 1, prefix + SEP)


def _ns(stored: str) -> tuple[str, ...]:
    return tuple(stored.split(SEP))


def _path(value: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


_OPS = {
    "$eq": lambda a, b: a == b, "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a is not None and a > b, "$gte": lambda a, b: a is not None and a >= b,
    "$lt": lambda a, b: a is not None and a < b, "$lte": lambda a, b: a is not None and a <= b,
    "$in": lambda a, b: a in b, "$nin": lambda a, b: a not in b,
}


def matches(value: dict[str, Any], where: dict[str, Any] | None) -> bool:
    """Whether a value passes a filter: ``{"field": v}`` (equality; dotted paths reach into
    nested dicts) or ``{"field": {"$gt": v, ...}}`` with ``$eq $ne $gt $gte $lt $lte $in
    $nin``."""
    if not where:
        return True
    for path, cond in where.items():
        got = _path(value, path)
        if isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond):
            for op, want in cond.items():
                test = _OPS.get(op)
                if test is None:
                    raise ValueError(f"unknown filter operator {op!r} for {path!r}; use one of "
                                     f"{sorted(_OPS)}")
                try:
                    if not test(got, want):
                        return False
                except TypeError:
                    return False
        elif got != cond:
            return False
    return True


def _normalized(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else list(vector)


class BaseStore:
    """Namespaced JSON values with semantic search (see the module docs).

    Args:
        embeddings: how indexed fields are embedded (an :class:`Embeddings`, a function or a
            name such as ``"minilm"``); None: no semantic search.
        index: the value fields embedded by default (dotted paths reach into nested dicts);
            ``put(..., index=[...])`` overrides per item, ``index=False`` skips it.
        ttl: default lifetime of items in seconds (None: forever).
    """

    __graphflow_inject__ = "store"  # a parameter annotated BaseStore receives the run's store

    def __init__(self, *, embeddings: Any = None, index: Sequence[str] = ("text",),
                 ttl: float | None = None) -> None:
        self.embeddings: Embeddings | None = (as_embeddings(embeddings)
                                              if embeddings is not None else None)
        self.index = tuple(index)
        self.ttl = ttl

    # -- what a backend implements -------------------------------------------------------------

    def _write(self, row: Row, vectors: list[tuple[str, list[float]]] | None) -> None:
        """Insert or replace one row; ``vectors`` (None: keep the old ones) replace its
        vectors."""
        raise NotImplementedError

    def _read(self, ns: str, key: str) -> Row | None:
        raise NotImplementedError

    def _read_many(self, pairs: Sequence[tuple[str, str]]) -> list[Row]:
        return [r for r in (self._read(ns, k) for ns, k in pairs) if r is not None]

    def _remove(self, ns: str, key: str) -> None:
        raise NotImplementedError

    def _rows(self, prefix: str) -> Iterator[Row]:
        """Rows whose namespace is ``prefix`` or below it ("" = all), newest update first."""
        raise NotImplementedError

    def _ranked(self, prefix: str, vector: list[float]) -> Iterator[tuple[str, str, float]]:
        """``(ns, key, best similarity of its vectors)`` under ``prefix``, best first."""
        raise NotImplementedError

    def _namespaces(self, prefix: str, now: float) -> list[str]:
        """Namespaces under ``prefix`` holding an item that has not expired at ``now``."""
        raise NotImplementedError

    def _sweep(self, now: float) -> int:
        raise NotImplementedError

    def close(self) -> None:
        """Release the connection(s)."""

    # -- the API ---------------------------------------------------------------------------------

    def put(self, namespace: Sequence[str], key: str, value: dict[str, Any], *,
            index: Sequence[str] | bool | None = None, ttl: float | None = None) -> None:
        """Store ``value`` (a JSON-serializable dict) under ``(namespace, key)``, replacing any
        value there (its ``created_at`` is kept). ``index``: fields to embed (default: the
        store's ``index``; False: none). ``ttl``: seconds until it expires."""
        ns = namespace_key(namespace)
        if not isinstance(key, str) or not key:
            raise ValueError(f"namespace {tuple(namespace)!r}: key must be a non-empty string, "
                             f"got {key!r}")
        if not isinstance(value, dict):
            raise TypeError(f"store.put({tuple(namespace)!r}, {key!r}): the value must be a dict, "
                            f"got {type(value).__name__}")
        try:
            text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"store.put({tuple(namespace)!r}, {key!r}): the value is not JSON "
                            f"({exc})") from None
        now = time.time()
        old = self._read(ns, key)
        created = old[3] if old is not None and not self._expired(old, now) else now
        life = ttl if ttl is not None else self.ttl
        expires = now + life if life is not None else None
        vectors = self._embed(value, index)
        self._write((ns, key, text, created, now, expires), vectors)

    def _embed(self, value: dict[str, Any], index: Sequence[str] | bool | None,
               ) -> list[tuple[str, list[float]]]:
        if index is False or self.embeddings is None:
            return []
        fields = self.index if index is None or index is True else tuple(index)
        texts = []
        for path in fields:
            got = _path(value, path)
            if got is not None and got != "":
                texts.append((path, got if isinstance(got, str) else json.dumps(got)))
        if not texts:
            return []
        vectors = self.embeddings.embed_documents([t for _, t in texts])
        return [(path, _normalized(v)) for (path, _), v in zip(texts, vectors, strict=True)]

    @staticmethod
    def _expired(row: Row, now: float) -> bool:
        return row[5] is not None and row[5] <= now

    @staticmethod
    def _item(row: Row, score: float | None = None) -> Item:
        return Item(_ns(row[0]), row[1], json.loads(row[2]), row[3], row[4], row[5], score)

    def get(self, namespace: Sequence[str], key: str) -> Item | None:
        """The item at ``(namespace, key)``, or None (also when it expired)."""
        row = self._read(namespace_key(namespace), key)
        if row is None or self._expired(row, time.time()):
            return None
        return self._item(row)

    def delete(self, namespace: Sequence[str], key: str) -> None:
        """Remove the item (nothing happens if there is none)."""
        self._remove(namespace_key(namespace), key)

    def search(self, namespace_prefix: Sequence[str] = (), *, query: str | None = None,
               filter: dict[str, Any] | None = None, limit: int = 10,
               offset: int = 0) -> list[Item]:
        """Items under a namespace prefix: the most similar to ``query`` (with ``score``),
        or without a query the most recently updated; ``filter`` on the values (see
        :func:`matches`)."""
        prefix = namespace_key(namespace_prefix, prefix=True)
        if limit < 1 or offset < 0:
            raise ValueError(f"search needs limit >= 1 and offset >= 0 (got {limit}, {offset})")
        now = time.time()
        want = offset + limit
        out: list[Item] = []
        if query is None:
            for row in self._rows(prefix):
                if not self._expired(row, now):
                    item = self._item(row)
                    if matches(item.value, filter):
                        out.append(item)
                        if len(out) >= want:
                            break
            return out[offset:]
        if self.embeddings is None:
            raise ValueError("search(query=...) needs a store with embeddings, e.g. "
                             "SqliteStore(path, embeddings='minilm')")
        vector = _normalized(self.embeddings.embed_query(query))
        batch: list[tuple[str, str, float]] = []
        for ranked in self._ranked(prefix, vector):
            batch.append(ranked)
            if len(batch) >= 64:
                self._collect(batch, filter, now, out)
                batch = []
                if len(out) >= want:
                    break
        if batch and len(out) < want:
            self._collect(batch, filter, now, out)
        return out[offset:want]

    def _collect(self, batch: list[tuple[str, str, float]], where: dict[str, Any] | None,
                 now: float, out: list[Item]) -> None:
        rows = {(r[0], r[1]): r for r in self._read_many([(ns, k) for ns, k, _ in batch])}
        for ns, key, score in batch:
            row = rows.get((ns, key))
            if row is not None and not self._expired(row, now):
                item = self._item(row, score)
                if matches(item.value, where):
                    out.append(item)

    def list_namespaces(self, prefix: Sequence[str] = (), *, max_depth: int | None = None,
                        ) -> list[tuple[str, ...]]:
        """The namespaces holding items, under ``prefix``, cut to ``max_depth`` labels."""
        found = [_ns(n) for n in self._namespaces(namespace_key(prefix, prefix=True),
                                                   time.time())]
        if max_depth is not None:
            found = [n[:max_depth] for n in found]
        return sorted(set(found))

    def sweep(self) -> int:
        """Delete expired items now (they are invisible already); returns how many."""
        return self._sweep(time.time())

    # -- async twins -----------------------------------------------------------------------------

    async def aput(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.to_thread(self.put, *args, **kwargs)

    async def aget(self, *args: Any, **kwargs: Any) -> Item | None:
        return await asyncio.to_thread(self.get, *args, **kwargs)

    async def adelete(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.to_thread(self.delete, *args, **kwargs)

    async def asearch(self, *args: Any, **kwargs: Any) -> list[Item]:
        return await asyncio.to_thread(self.search, *args, **kwargs)

    def __enter__(self) -> BaseStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _score_numpy(rows: Iterable[tuple[str, str, bytes]], vector: list[float],
                 ) -> list[tuple[str, str, float]]:
    """Rank float32 vectors (bytes) by dot product with ``vector`` (both normalized), keeping
    each item's best field; best first. Used by backends that score in Python."""
    from .._extras import require

    np = require("numpy", "semantic search in a store")
    keys: list[tuple[str, str]] = []
    blobs: list[bytes] = []
    for ns, key, blob in rows:
        keys.append((ns, key))
        blobs.append(blob)
    if not keys:
        return []
    q = np.asarray(vector, dtype=np.float32)
    size = q.size * 4
    bad = [i for i, b in enumerate(blobs) if len(b) != size]
    if bad:
        ns, key = keys[bad[0]]
        raise ValueError(
            f"store item {_ns(ns)!r}/{key!r} has a {len(blobs[bad[0]]) // 4}-dimensional vector "
            f"but the query has {q.size} dimensions: the store was indexed with another "
            f"embedder; re-put its items or use the same embedder")
    matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), q.size)
    scores = matrix @ q
    best: dict[tuple[str, str], float] = {}
    for i in np.argsort(-scores):
        k = keys[int(i)]
        if k not in best:
            best[k] = float(scores[int(i)])
    return [(ns, key, s) for (ns, key), s in best.items()]


class StoreMemory:
    """One namespace of a store, as a :class:`Searchable` memory of texts (for
    :class:`RecallNode`, :class:`RememberNode`, the memory tools and :class:`HybridMemory`).

    Each text is stored as ``{"text": ..., **metadata}`` under an id derived from the running
    node's task and journal slot (a resumed write replaces, never duplicates), or from the text.
    """

    def __init__(self, store: BaseStore, namespace: Sequence[str]) -> None:
        namespace_key(namespace)
        self.store = store
        self.namespace = tuple(namespace)

    def add(self, texts: Sequence[str] | str, *,
            metadatas: Sequence[dict[str, Any] | None] | None = None,
            ids: Sequence[str] | None = None) -> list[str]:
        items = [texts] if isinstance(texts, str) else list(texts)
        metas = list(metadatas) if metadatas is not None else [None] * len(items)
        label = namespace_key(self.namespace)

        def write(slot: str | None) -> list[str]:
            if ids is not None:
                keys = [str(i) for i in ids]
            elif slot is not None:
                keys = slot_ids(slot, len(items), label)
            else:
                keys = [content_id(t, label) for t in items]
            for key, text, meta in zip(keys, items, metas, strict=True):
                self.store.put(self.namespace, key, {**(meta or {}), "text": text},
                               index=["text"])
            return keys

        return durable(f"memory:put:{label}", write)

    def search(self, query: str, k: int = 5, *, where: dict[str, Any] | None = None,
               ) -> list[MemoryHit]:
        items = self.store.search(self.namespace, query=query, filter=where, limit=k)
        return [MemoryHit(i.key, str(i.value.get("text", "")),
                          {n: v for n, v in i.value.items() if n != "text"}, i.score or 0.0)
                for i in items]

    def delete(self, ids: Sequence[str] | str) -> None:
        for key in [ids] if isinstance(ids, str) else ids:
            self.store.delete(self.namespace, key)

    def __repr__(self) -> str:
        return f"StoreMemory({type(self.store).__name__}, {self.namespace!r})"
