""":class:`VectorMemory`: texts, metadata and vectors in a chromadb collection.

chromadb does the vector search; graphflow embeds (never chromadb's own default embedder, which
would download a model), keeps the embedder's name and dimension in the collection's metadata
(a persisted collection reopens with the same embedder, and a wrong one is refused), makes
writes idempotent under resume, and adds an optional keyword index (SQLite FTS5, BM25) for
hybrid search and a re-ranking hook.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from ._durable import content_id, durable, slot_ids
from ._extras import require
from .base import MemoryHit
from .chunking import as_chunker
from .embeddings import Embeddings, MiniLMEmbeddings, as_embeddings
from .keyword import KeywordIndex

__all__ = ["DEFAULT_PATH", "Reranker", "VectorMemory"]

DEFAULT_PATH = ".graphflow/memory"
EMBEDDER_KEY = "graphflow:embedder"
DIMENSION_KEY = "graphflow:dimension"
_COLLECTION = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$")
Reranker = Callable[[str, list[MemoryHit]], list[MemoryHit]]
Mode = Literal["vector", "hybrid", "keyword"]


def _clean_metadata(meta: dict[str, Any] | None, where: str) -> dict[str, Any] | None:
    """chromadb takes str, int, float and bool values: drop None, refuse the rest clearly."""
    if not meta:
        return None
    out = {}
    for key, value in meta.items():
        if value is None:
            continue
        if not isinstance(key, str) or not isinstance(value, (str, int, float, bool)):
            raise TypeError(f"{where}: metadata {key!r} = {value!r:.60} is not a str, int, float "
                            f"or bool (chromadb stores only those; encode it as text)")
        out[key] = value
    return out or None


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
    return dot / norm if norm else 0.0


class VectorMemory:
    """A chromadb collection of texts, searched by meaning.

    Args:
        collection: the collection's name (3-512 characters among letters, digits, ``.``,
            ``_``, ``-``).
        path: the directory of an embedded ``PersistentClient`` (default ``.graphflow/memory``).
        host, port: use a chroma server (``chroma run``) instead.
        embeddings: an :class:`Embeddings`, a function ``texts -> vectors``, or a name; default:
            the embedder the collection was created with, else :class:`MiniLMEmbeddings`.
        client: an existing chromadb client (``path``/``host`` are then ignored).
        keyword_index: keep a BM25 keyword index beside the collection for
            ``search(mode="hybrid")`` (a SQLite file next to an embedded collection, in memory
            for a server; rebuilt from the collection when it is missing or out of date).
        rerank: a default re-ranking hook ``(query, hits) -> hits`` applied by ``search``.

    Example::

        mem = VectorMemory("notes", path=".graphflow/memory")
        mem.add(["Paris is the capital of France."], metadatas=[{"topic": "geo"}])
        mem.search("What is France's capital?", k=3)   # [MemoryHit(id, text, metadata, score)]
    """

    def __init__(self, collection: str = "memories", *, path: str | Path | None = None,
                 host: str | None = None, port: int | None = None, embeddings: Any = None,
                 client: Any = None, keyword_index: bool = True,
                 rerank: Reranker | None = None) -> None:
        if not isinstance(collection, str) or not _COLLECTION.match(collection):
            raise ValueError(f"invalid collection name {collection!r}: use 3-512 characters "
                             f"among letters, digits, '.', '_' and '-', starting and ending "
                             f"with a letter or digit")
        chromadb = require("chromadb", "VectorMemory")
        settings = chromadb.Settings(anonymized_telemetry=False)
        self.name = collection
        self.path = None
        if client is not None:
            self.client = client
        elif host is not None:
            self.client = chromadb.HttpClient(host=host, port=port or 8000, settings=settings)
        else:
            self.path = Path(path or DEFAULT_PATH)
            self.path.mkdir(parents=True, exist_ok=True)
            self.client = chromadb.PersistentClient(path=str(self.path), settings=settings)
        self.embeddings = self._open(collection, embeddings)
        self.rerank = rerank
        self._use_keywords = keyword_index
        self._keywords: KeywordIndex | None = None
        self._kw_lock = threading.Lock()

    # -- opening -----------------------------------------------------------------------------

    def _open(self, name: str, embeddings: Any) -> Embeddings:
        existing = None
        try:
            existing = self.client.get_collection(name, embedding_function=None)
        except Exception as exc:  # chromadb raises NotFoundError / ValueError by version
            if "does not exist" not in str(exc) and "not found" not in str(exc).lower():
                raise
        if existing is not None:
            meta = existing.metadata or {}
            stored = meta.get(EMBEDDER_KEY)
            if embeddings is None:
                if stored is None:
                    raise ValueError(
                        f"collection {name!r} was not created by graphflow (no embedder recorded "
                        f"in its metadata): pass embeddings=... to say how its vectors were made")
                try:
                    emb = as_embeddings(stored)
                except ValueError:
                    raise ValueError(
                        f"collection {name!r} was built with the embedder {stored!r}, which "
                        f"graphflow cannot recreate by name: pass embeddings=... (the same "
                        f"function, with name={stored!r})") from None
            else:
                emb = as_embeddings(embeddings)
                if stored is not None and stored != emb.name:
                    raise ValueError(
                        f"collection {name!r} was built with the embedder {stored!r}, but this "
                        f"VectorMemory uses {emb.name!r}: vectors of different embedders cannot "
                        f"be compared. Pass the same embedder, or use another collection")
            self.dimension = int(meta.get(DIMENSION_KEY) or emb.dimension)
            self.collection = existing
            return emb
        emb = as_embeddings(embeddings) if embeddings is not None else MiniLMEmbeddings()
        self.dimension = emb.dimension
        self.collection = self.client.get_or_create_collection(
            name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
            metadata={EMBEDDER_KEY: emb.name, DIMENSION_KEY: self.dimension})
        return emb

    # -- writing -----------------------------------------------------------------------------

    def _vectors(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self.embeddings.embed_documents(texts)
        for v in vectors:
            if len(v) != self.dimension:
                raise ValueError(
                    f"collection {self.name!r} holds {self.dimension}-dimensional vectors, but "
                    f"the embedder {self.embeddings.name!r} made a {len(v)}-dimensional one: use "
                    f"the embedder the collection was built with, or another collection")
        return vectors

    def _upsert(self, ids: list[str], texts: list[str],
                metadatas: list[dict[str, Any] | None]) -> None:
        if not ids:
            return
        if len(set(ids)) != len(ids):
            raise ValueError(f"collection {self.name!r}: duplicate ids in one write")
        self.collection.upsert(ids=ids, documents=texts, embeddings=self._vectors(texts),
                               metadatas=metadatas)
        index = self._keyword_index(sync=False)
        if index is not None:
            index.upsert(ids, texts)

    def add(self, texts: Sequence[str] | str, *,
            metadatas: Sequence[dict[str, Any] | None] | None = None,
            ids: Sequence[str] | None = None) -> list[str]:
        """Store texts (an upsert: an existing id is replaced); returns their ids.

        Ids default to ones derived from the running node's task and journal slot (so a
        resumed node rewrites the same records, never duplicates), or outside a graph from the
        text itself (storing the same text twice keeps one record).
        """
        items = [texts] if isinstance(texts, str) else list(texts)
        metas = list(metadatas) if metadatas is not None else [None] * len(items)
        if len(metas) != len(items) or (ids is not None and len(ids) != len(items)):
            raise ValueError(f"collection {self.name!r}: {len(items)} texts but "
                             f"{len(metas)} metadatas / {len(ids or items)} ids")
        clean = [_clean_metadata(m, f"collection {self.name!r}") for m in metas]

        def write(slot: str | None) -> list[str]:
            if ids is not None:
                given = [str(i) for i in ids]
            elif slot is not None:
                given = slot_ids(slot, len(items), self.name)
            else:
                given = [content_id(t, self.name) for t in items]
            self._upsert(given, items, clean)
            return given

        return durable(f"memory:add:{self.name}", write)

    upsert = add

    def store(self, text: str, metadata: dict[str, Any] | None = None,
              id: str | None = None) -> str:
        """Store one text; returns its id (see :meth:`add`)."""
        return self.add([text], metadatas=[metadata], ids=None if id is None else [id])[0]

    def ingest(self, documents: Iterable[Any], *, chunking: Any = 1000, batch_size: int = 64,
               metadata: dict[str, Any] | None = None) -> list[str]:
        """Chunk and store documents in batches; returns the chunks' ids.

        ``documents``: texts, ``(text, metadata)`` pairs or ``{"text", "metadata", "id"}``
        dicts. ``chunking``: a size in characters (default 1000), ``(size, overlap)``, a
        function ``text -> chunks``, or None (whole documents). Each chunk's metadata has the
        document's, plus ``source_id`` and ``chunk`` (its position). Ids are derived from the
        document's id (given, or derived from its text) and the position: re-ingesting a
        document replaces its chunks.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        chunker = as_chunker(chunking)
        ids: list[str] = []
        texts: list[str] = []
        metas: list[dict[str, Any] | None] = []
        for n, doc in enumerate(documents):
            doc_id, text, meta = self._document(doc, n)
            pieces = chunker(text) if chunker is not None else [text]
            for i, piece in enumerate(pieces):
                ids.append(content_id(f"{i}", doc_id) if chunker is not None else doc_id)
                texts.append(piece)
                metas.append(_clean_metadata({**(metadata or {}), **(meta or {}),
                                              "source_id": doc_id, "chunk": i},
                                             f"ingest document {n}"))

        def write(slot: str | None) -> list[str]:
            for start in range(0, len(ids), batch_size):
                end = start + batch_size
                self._upsert(ids[start:end], texts[start:end], metas[start:end])
            return ids

        return durable(f"memory:ingest:{self.name}", write)

    def _document(self, doc: Any, n: int) -> tuple[str, str, dict[str, Any] | None]:
        if isinstance(doc, str):
            return content_id(doc, self.name), doc, None
        if isinstance(doc, tuple) and len(doc) == 2:
            text, meta = doc
            return content_id(text, self.name), text, meta
        if isinstance(doc, dict) and isinstance(doc.get("text"), str):
            text = doc["text"]
            return str(doc.get("id") or content_id(text, self.name)), text, doc.get("metadata")
        raise TypeError(f"ingest: document {n} is {type(doc).__name__}; pass a text, a "
                        f"(text, metadata) pair or a dict with 'text'")

    def delete(self, ids: Sequence[str] | str | None = None, *,
               where: dict[str, Any] | None = None) -> None:
        """Delete records by id and/or metadata filter."""
        if ids is None and where is None:
            raise ValueError("delete() needs ids or where= (to delete everything, use clear())")
        id_list = [ids] if isinstance(ids, str) else (list(ids) if ids is not None else None)
        if where is not None:
            found = self.collection.get(ids=id_list, where=where, include=[])["ids"]
            id_list = list(found)
        if id_list:
            self.collection.delete(ids=id_list)
            index = self._keyword_index(sync=False)
            if index is not None:
                index.delete(id_list)

    def clear(self) -> None:
        """Delete every record (the collection and its embedder stay)."""
        ids = self.collection.get(include=[])["ids"]
        for start in range(0, len(ids), 5000):
            self.collection.delete(ids=ids[start:start + 5000])
        if self._keywords is not None:
            self._keywords.clear()

    # -- reading -----------------------------------------------------------------------------

    def count(self) -> int:
        return int(self.collection.count())

    def get(self, id: str) -> MemoryHit | None:
        """The record with this id (score 1.0), or None."""
        got = self.collection.get(ids=[id], include=["documents", "metadatas"])
        if not got["ids"]:
            return None
        return MemoryHit(got["ids"][0], got["documents"][0] or "", dict(got["metadatas"][0] or {}),
                         1.0)

    def search(self, query: str, k: int = 5, *, where: dict[str, Any] | None = None,
               mode: Mode = "vector", rerank: Reranker | None = None,
               candidates: int | None = None, alpha: float = 0.9) -> list[MemoryHit]:
        """The ``k`` records most relevant to ``query``.

        Args:
            where: a chromadb metadata filter (``{"topic": "geo"}``, ``{"year": {"$gte": 2020}}``,
                ``{"$and": [...]}``).
            mode: ``"vector"`` (cosine similarity of MiniLM/OpenAI vectors), ``"keyword"``
                (BM25 over the keyword index, SQLite FTS5) or ``"hybrid"`` (both:
                ``alpha * cosine + (1 - alpha) * BM25 / the query's best BM25``).
            alpha: the vector side's weight in hybrid mode.
            rerank: ``(query, hits) -> hits`` re-ordering ``candidates`` hits (default
                ``4 * k``) before the best ``k`` are kept; overrides the memory's default.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        rerank = rerank or self.rerank
        n = max(candidates or (4 * k if rerank is not None or mode != "vector" else k), k)
        if mode == "vector":
            hits = self._vector_hits(query, n, where)
        elif mode in ("hybrid", "keyword"):
            if not 0.0 <= alpha <= 1.0:
                raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
            hits = self._fused(query, n, where, mode, alpha)
        else:
            raise ValueError(f"unknown search mode {mode!r}: use 'vector', 'hybrid' or 'keyword'")
        if rerank is not None:
            hits = list(rerank(query, hits))
        return hits[:k]

    def _vector_hits(self, query: str, n: int, where: dict[str, Any] | None,
                     vector: list[float] | None = None) -> list[MemoryHit]:
        if vector is None:
            vector = self.embeddings.embed_query(query)
        res = self.collection.query(query_embeddings=[vector], n_results=n, where=where,
                                    include=["documents", "metadatas", "distances"])
        ids, docs = res["ids"][0], res["documents"][0]
        metas, dists = res["metadatas"][0], res["distances"][0]
        return [MemoryHit(ids[i], docs[i] or "", dict(metas[i] or {}), 1.0 - dists[i])
                for i in range(len(ids))]

    def _fused(self, query: str, n: int, where: dict[str, Any] | None, mode: str,
               alpha: float) -> list[MemoryHit]:
        """Keyword (BM25) hits, alone or fused with vector hits: ``alpha * cosine + (1 - alpha)
        * bm25 / best bm25`` (each candidate's cosine computed exactly, also for those only the
        keyword search found)."""
        index = self._keyword_index(sync=True)
        if index is None:
            raise ValueError(f"collection {self.name!r}: mode={mode!r} needs the keyword index "
                             f"(VectorMemory(..., keyword_index=True))")
        keyword = dict(index.search(query, n * (4 if where else 1)))
        best = max(keyword.values(), default=0.0) or 1.0
        vector = self.embeddings.embed_query(query) if mode == "hybrid" else None
        hits = {h.id: h for h in (self._vector_hits(query, n, where, vector)
                                  if vector is not None else [])}
        missing = [i for i in keyword if i not in hits]
        if missing:
            include = ["documents", "metadatas"] + (["embeddings"] if vector is not None else [])
            got = self.collection.get(ids=missing, where=where, include=include)
            embs = got.get("embeddings") if vector is not None else None
            for j, i in enumerate(got["ids"]):
                score = _cosine(vector, embs[j]) if vector is not None else 0.0
                hits[i] = MemoryHit(i, got["documents"][j] or "",
                                    dict(got["metadatas"][j] or {}), score)
        a = alpha if mode == "hybrid" else 0.0
        fused = [MemoryHit(h.id, h.text, h.metadata,
                           a * h.score + (1 - a) * keyword.get(h.id, 0.0) / best)
                 for h in hits.values() if h.id in keyword or mode == "hybrid"]
        fused.sort(key=lambda h: h.score, reverse=True)
        return fused[:n]

    def _keyword_index(self, *, sync: bool) -> KeywordIndex | None:
        """The keyword index (created on first use; ``sync``: rebuilt from the collection if
        its size differs, e.g. another client wrote to a server's collection)."""
        if not self._use_keywords:
            return None
        with self._kw_lock:
            if self._keywords is None:
                if not sync:
                    return None  # built from the collection when a hybrid search needs it
                where = ":memory:" if self.path is None else self.path / f"{self.name}.fts.sqlite3"
                self._keywords = KeywordIndex(where)
            index = self._keywords
            if sync and index.count() != self.count():
                index.clear()
                total = self.count()
                for offset in range(0, total, 5000):
                    got = self.collection.get(include=["documents"], limit=5000, offset=offset)
                    index.upsert(list(got["ids"]), [d or "" for d in got["documents"]])
        return index

    # -- async -------------------------------------------------------------------------------

    async def aadd(self, texts: Sequence[str] | str, **kw: Any) -> list[str]:
        """Async :meth:`add` (the sync call in a worker thread)."""
        return await asyncio.to_thread(self.add, texts, **kw)

    async def asearch(self, query: str, k: int = 5, **kw: Any) -> list[MemoryHit]:
        """Async :meth:`search`."""
        return await asyncio.to_thread(self.search, query, k, **kw)

    def __repr__(self) -> str:
        where = f"path={str(self.path)!r}" if self.path is not None else "server"
        return f"VectorMemory({self.name!r}, {where}, embeddings={self.embeddings.name!r})"
