"""Stores on real SQLite and PostgreSQL: namespaces, semantic search, filters, TTL, injection."""

from __future__ import annotations

import time
import uuid
from typing import TypedDict

import pytest
from graphflow.memory import (
    BaseStore,
    FunctionEmbeddings,
    PostgresStore,
    SqliteStore,
    StoreMemory,
)

from graphflow import END, START, StateGraph
from graphflow.testing.llm_servers import hashed_embedding

pytest.importorskip("numpy", reason="semantic search in a store needs pip install "
                                    "'graphflow[memory]'")


def hashed(dim: int = 64) -> FunctionEmbeddings:
    return FunctionEmbeddings(lambda texts: [hashed_embedding(t, dim) for t in texts],
                              name=f"hashed{dim}")


@pytest.fixture(params=["sqlite", "postgres", "postgres-numpy"])
def store(request, tmp_path):
    """A fresh store of each backend, in a namespace of its own (the PG database is shared)."""
    if request.param == "sqlite":
        s: BaseStore = SqliteStore(tmp_path / "store.db", embeddings=hashed())
    else:
        dsn = request.getfixturevalue("pg_dsn")
        vectors = "numpy" if request.param.endswith("numpy") else "auto"
        s = PostgresStore(dsn, embeddings=hashed(), vectors=vectors)
    s.test_root = ("t" + uuid.uuid4().hex[:8],)  # type: ignore[attr-defined]
    yield s
    s.close()


def ns(store, *labels):
    return (*store.test_root, *labels)


def test_put_get_replace_delete(store):
    store.put(ns(store, "u1"), "a", {"text": "likes green tea", "n": 1})
    item = store.get(ns(store, "u1"), "a")
    assert item.value == {"text": "likes green tea", "n": 1} and item.key == "a"
    assert item.namespace == ns(store, "u1")
    created = item.created_at
    store.put(ns(store, "u1"), "a", {"text": "likes black tea"})
    again = store.get(ns(store, "u1"), "a")
    assert again.value["text"] == "likes black tea" and again.created_at == created
    assert again.updated_at >= created
    store.delete(ns(store, "u1"), "a")
    assert store.get(ns(store, "u1"), "a") is None
    store.delete(ns(store, "u1"), "a")  # no error


def test_semantic_search_filters_prefixes_and_pages(store):
    facts = {"a": ("lives in Paris near the river", "fact"),
             "b": ("likes green tea in the morning", "pref"),
             "c": ("works as a nurse at night", "fact"),
             "d": ("prefers green tea to coffee", "pref")}
    for key, (text, kind) in facts.items():
        store.put(ns(store, "users", "u1"), key, {"text": text, "kind": kind})
    store.put(ns(store, "users", "u2"), "x", {"text": "green tea is their favourite"})
    store.put(ns(store, "usersX"), "y", {"text": "green tea green tea"})  # not under "users"
    hits = store.search(ns(store, "users"), query="green tea", limit=3)
    assert {h.key for h in hits[:3]} == {"b", "d", "x"} and hits[0].score >= hits[-1].score
    only_u1 = store.search(ns(store, "users", "u1"), query="green tea", filter={"kind": "pref"})
    assert [h.key for h in only_u1] == [h.key for h in hits if h.key in "bd"]
    facts_only = store.search(ns(store, "users"), filter={"kind": {"$in": ["fact"]}}, limit=10)
    assert {h.key for h in facts_only} == {"a", "c"} and all(h.score is None for h in facts_only)
    page = store.search(ns(store, "users"), query="green tea", limit=2, offset=1)
    assert [h.key for h in page] == [h.key for h in hits[1:3]]
    assert store.list_namespaces(ns(store)) == [ns(store, "users", "u1"),
                                                 ns(store, "users", "u2"), ns(store, "usersX")]
    assert store.list_namespaces(ns(store), max_depth=2) == [ns(store, "users"),
                                                              ns(store, "usersX")]


def test_index_choice_ttl_and_sweep(store):
    store.put(ns(store), "no-vec", {"text": "green tea"}, index=False)
    store.put(ns(store), "body", {"title": "x", "body": {"text": "green tea"}},
              index=["body.text"])
    assert [h.key for h in store.search(ns(store), query="green tea")] == ["body"]
    store.put(ns(store), "gone", {"text": "short lived"}, ttl=0.01)
    store.put(ns(store), "kept", {"text": "long lived"}, ttl=3600)
    deadline = time.monotonic() + 5
    while store.get(ns(store), "gone") is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert store.get(ns(store), "gone") is None
    assert "gone" not in {h.key for h in store.search(ns(store), limit=10)}
    store.put(ns(store, "brief"), "only", {"text": "x"}, ttl=0.01)
    while store.get(ns(store, "brief"), "only") is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ns(store, "brief") not in store.list_namespaces(ns(store))  # expired: not listed
    assert store.sweep() >= 1
    assert store.get(ns(store), "kept").expires_at > time.time()


def test_bad_input_gets_clear_errors(store):
    with pytest.raises(ValueError, match="control character"):
        store.put(("users", "bad\x00label"), "k", {})
    with pytest.raises(ValueError, match="non-empty strings"):
        store.put(("users", ""), "k", {})
    with pytest.raises(TypeError, match="must be a dict"):
        store.put(ns(store), "k", ["not", "a", "dict"])
    with pytest.raises(TypeError, match="not JSON"):
        store.put(ns(store), "k", {"x": object()})
    with pytest.raises(ValueError, match="unknown filter operator"):
        store.put(ns(store), "k", {"n": 1})
        store.search(ns(store), filter={"n": {"$near": 1}})
    store.put(ns(store), "v", {"text": "something"})
    store.embeddings = hashed(32)
    with pytest.raises(ValueError, match=r"64-dimensional vector.*32 dimensions"):
        store.search(ns(store), query="something")
    plain = SqliteStore()
    with pytest.raises(ValueError, match="needs a store with embeddings"):
        plain.search(("a",), query="x")


class S(TypedDict, total=False):
    user: str
    found: list


def test_nodes_receive_the_store_by_name_or_annotation(tmp_path):
    store = SqliteStore(tmp_path / "s.db", embeddings=hashed())
    store.put(("users", "u1"), "tea", {"text": "likes green tea"})

    def by_annotation(state, memory: BaseStore):
        return {"found": [i.value["text"] for i in memory.search(("users", state["user"]),
                                                                 query="tea")]}

    def by_name(state, store):
        store.put(("users", state["user"]), "seen", {"text": "visited today"})
        return {}

    g = StateGraph(S)
    g.add_node("write", by_name)
    g.add_node("read", by_annotation)
    g.add_edge(START, "write")
    g.add_edge("write", "read")
    g.add_edge("read", END)
    out = g.compile(store=store).invoke({"user": "u1"})
    assert out["found"][0] == "likes green tea" and len(out["found"]) == 2


def test_store_memory_writes_are_idempotent_and_searchable(store):
    mem = StoreMemory(store, ns(store, "memories"))
    ids = mem.add(["likes green tea", "lives in Paris"], metadatas=[{"k": 1}, None])
    assert mem.add(["likes green tea"], metadatas=[{"k": 1}]) == ids[:1]  # same text: same id
    hit = mem.search("tea", k=1)[0]
    assert hit.id == ids[0] and hit.text == "likes green tea" and hit.metadata == {"k": 1}
    mem.delete(ids[0])
    assert [h.id for h in mem.search("tea", k=5)] == [ids[1]]


def test_postgres_vectors_mode_is_detected(pg_dsn):
    store = PostgresStore(pg_dsn)
    with store._conn.cursor() as cur:
        has = cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
    assert store.vectors == ("pgvector" if has else "array")
    if not has:
        with pytest.raises(ValueError, match="'vector' extension is not installed"):
            PostgresStore(pg_dsn, vectors="pgvector")
    store.close()
