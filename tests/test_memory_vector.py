"""VectorMemory on real chromadb (embedded and a `chroma run` server), embeddings offline."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from typing import Any, TypedDict

import pytest
from graphflow.memory import FunctionEmbeddings, MemoryHit, OpenAIEmbeddings, VectorMemory

from graphflow import END, START, StateGraph, interrupt
from graphflow.checkpoint import MemoryCheckpointer
from graphflow.testing.llm_servers import OpenAIServer, hashed_embedding
from graphflow.types import Command

pytest.importorskip("chromadb", reason="VectorMemory needs pip install 'graphflow[memory]'")

FACTS = ["Paris is the capital of France.", "Berlin is the capital of Germany.",
         "The cat sleeps on the warm windowsill.", "Python lists grow by appending items."]


def hashed(dim: int = 64, name: str = "hashed64") -> FunctionEmbeddings:
    return FunctionEmbeddings(lambda texts: [hashed_embedding(t, dim) for t in texts], name=name)


@pytest.fixture
def mem(tmp_path):
    return VectorMemory("facts", path=tmp_path / "db", embeddings=hashed())


def test_add_search_count_delete_with_metadata_filters(mem):
    ids = mem.add(FACTS, metadatas=[{"topic": "geo"}, {"topic": "geo"}, {"topic": "pets"},
                                    {"topic": "code", "year": 2024}])
    assert mem.count() == 4 and len(set(ids)) == 4
    hits = mem.search("What is the capital of France?", k=2)
    assert isinstance(hits[0], MemoryHit) and hits[0].text == FACTS[0]
    assert hits[0].metadata == {"topic": "geo"} and hits[0].score > hits[1].score
    assert -1.0 <= hits[1].score <= 1.0
    assert [h.text for h in mem.search("capital", k=5, where={"topic": "pets"})] == [FACTS[2]]
    assert mem.search("lists", where={"year": {"$gte": 2020}})[0].id == ids[3]
    assert mem.get(ids[1]).text == FACTS[1] and mem.get("nope") is None
    mem.delete(ids[0])
    mem.delete(where={"topic": "pets"})
    assert mem.count() == 2
    with pytest.raises(ValueError, match="needs ids or where"):
        mem.delete()
    mem.clear()
    assert mem.count() == 0


def test_upsert_is_idempotent_by_id_and_by_text(mem):
    first = mem.add(FACTS[:2])
    assert mem.add(FACTS[:2]) == first and mem.count() == 2  # same texts: same records
    mem.add(["Paris is in France."], ids=[first[0]])
    assert mem.count() == 2 and mem.get(first[0]).text == "Paris is in France."
    assert mem.store("one more", {"k": 1}, id="x1") == "x1" and mem.count() == 3


def test_ingest_chunks_in_batches_and_reingest_replaces(tmp_path):
    calls = []

    def embed(texts):
        calls.append(len(texts))
        return [hashed_embedding(t) for t in texts]

    mem = VectorMemory("docs", path=tmp_path, embeddings=FunctionEmbeddings(embed, name="h"))
    doc = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(200))
    ids = mem.ingest([{"text": doc, "id": "manual", "metadata": {"kind": "manual"}},
                      ("A short note.", {"kind": "note"})], chunking=300, batch_size=8)
    assert mem.count() == len(ids) > 10
    assert calls[0] == 1  # the dimension probe when the collection was created
    assert max(calls[1:]) <= 8 and sum(calls[1:]) == len(ids)
    hit = mem.search("topic 3", k=1, where={"kind": "manual"})[0]
    assert hit.metadata["source_id"] == "manual" and len(hit.text) <= 300
    assert mem.ingest([{"text": doc, "id": "manual", "metadata": {"kind": "manual"}}],
                      chunking=300) == ids[:-1]
    assert mem.count() == len(ids)
    with pytest.raises(TypeError, match="document 0"):
        mem.ingest([42])


def test_a_persisted_collection_reopens_with_its_embedder_and_refuses_another(tmp_path):
    with OpenAIServer() as server:
        emb = OpenAIEmbeddings("text-embedding-3-small", base_url=server.base_url,
                               api_key="test", dimensions=48)
        VectorMemory("kb1", path=tmp_path, embeddings=emb).add(FACTS)
        again = VectorMemory("kb1", path=tmp_path, embeddings=emb)
        assert again.count() == 4 and again.dimension == 48
        with pytest.raises(ValueError, match=r"built with the embedder 'openai:text-embedding"
                                             r"-3-small:48'.*uses 'hashed64'"):
            VectorMemory("kb1", path=tmp_path, embeddings=hashed())
    VectorMemory("hk1", path=tmp_path, embeddings=hashed()).add(FACTS)
    with pytest.raises(ValueError, match=r"cannot recreate by name.*hashed64"):
        VectorMemory("hk1", path=tmp_path)
    same_name_other_size = hashed(dim=32, name="hashed64")
    with pytest.raises(ValueError, match=r"64-dimensional vectors.*32-dimensional"):
        VectorMemory("hk1", path=tmp_path, embeddings=same_name_other_size).add(["x"])


def test_bad_input_is_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match="invalid collection name 'a b'"):
        VectorMemory("a b", path=tmp_path, embeddings=hashed())
    mem = VectorMemory("ok-name", path=tmp_path, embeddings=hashed())
    with pytest.raises(TypeError, match=r"metadata 'tags'.*not a str, int, float or bool"):
        mem.add(["x"], metadatas=[{"tags": ["a", "b"]}])
    with pytest.raises(ValueError, match="2 texts but 1 metadatas"):
        mem.add(["a", "b"], metadatas=[{}])
    with pytest.raises(ValueError, match="unknown search mode"):
        mem.search("x", mode="fuzzy")


def test_chromadb_default_embedder_is_never_reached(tmp_path, monkeypatch):
    from chromadb.utils import embedding_functions as ef

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("chromadb's default embedder was used")

    monkeypatch.setattr(ef.DefaultEmbeddingFunction, "__call__", refuse)
    monkeypatch.setattr(ef.ONNXMiniLM_L6_V2, "__call__", refuse)
    mem = VectorMemory("guarded", path=tmp_path, embeddings=hashed())
    mem.add(FACTS)
    mem.ingest(FACTS, chunking=None)
    assert mem.search("capital of France")[0].text == FACTS[0]
    assert mem.search("capital of France", mode="hybrid")[0].text == FACTS[0]
    assert mem.collection.configuration_json["embedding_function"] in (None, {"type": "legacy"})


def test_hybrid_and_keyword_modes_and_a_rerank_hook(mem):
    mem.add([*FACTS, "Error code E-4711 means the disk is full."])
    assert mem.search("E-4711", k=1, mode="keyword")[0].text.startswith("Error code")
    assert mem.search("what does E-4711 mean", k=1, mode="hybrid")[0].text.startswith("Error")

    def by_length(query: str, hits: list[MemoryHit]) -> list[MemoryHit]:
        return sorted(hits, key=lambda h: len(h.text))

    shortest = min([*FACTS, "Error code E-4711 means the disk is full."], key=len)
    assert mem.search("anything at all", k=1, rerank=by_length, candidates=10)[0].text == shortest


def test_the_keyword_index_catches_up_with_writes_made_elsewhere(tmp_path):
    mem = VectorMemory("shared", path=tmp_path, embeddings=hashed())
    mem.add(FACTS)
    other = VectorMemory("shared", path=tmp_path / "x", client=mem.client, embeddings=hashed())
    other.add(["Zanzibar exports cloves."])
    assert mem.search("Zanzibar", k=1, mode="keyword")[0].text == "Zanzibar exports cloves."


def test_against_a_chroma_server(chroma_url):
    host, port = chroma_url
    name = "srv-" + uuid.uuid4().hex[:8]
    mem = VectorMemory(name, host=host, port=port, embeddings=hashed())
    ids = mem.add(FACTS, metadatas=[{"n": i} for i in range(4)])
    assert mem.count() == 4
    assert mem.search("capital of Germany", k=1)[0].id == ids[1]
    assert mem.search("Germany", k=1, mode="hybrid")[0].id == ids[1]
    with pytest.raises(ValueError, match="cannot recreate by name"):
        VectorMemory(name, host=host, port=port)  # a function embedder must be passed again
    mem.delete(where={"n": {"$lt": 2}})
    assert VectorMemory(name, host=host, port=port, embeddings=hashed()).count() == 2


def test_async_twins(mem):
    ids = asyncio.run(mem.aadd(FACTS))
    hits = asyncio.run(mem.asearch("capital of France", 1))
    assert hits[0].id == ids[0]


class S(TypedDict, total=False):
    topic: str
    ids: list
    answer: Any


def test_writes_in_a_node_are_idempotent_under_resume(tmp_path):
    """A node stores, then pauses (interrupt); resuming re-runs the node: the journaled write
    is not repeated, and no record is duplicated."""
    mem = VectorMemory("durable", path=tmp_path, embeddings=hashed())
    runs = []

    def node(state):
        runs.append(1)
        ids = mem.add([f"note about {state['topic']}", "second note"])
        answer = interrupt("ok?")
        return {"ids": ids, "answer": answer}

    g = StateGraph(S)
    g.add_node("write", node)
    g.add_edge(START, "write")
    g.add_edge("write", END)
    app = g.compile(checkpointer=MemoryCheckpointer())
    app.invoke({"topic": "tea"}, thread="t1")
    assert mem.count() == 2
    out = app.invoke(Command(resume="yes"), thread="t1")
    assert len(runs) == 2 and mem.count() == 2 and out["answer"] == "yes"
    assert sorted(out["ids"]) == sorted(h.id for h in mem.search("note", k=5))
    app.invoke({"topic": "tea"}, thread="t2")  # another task: its own records
    assert mem.count() == 4


def test_a_write_that_reached_the_database_before_a_crash_is_not_duplicated(tmp_path):
    """The crash comes after the upsert and before the journal entry: the re-run derives the
    same ids from the task's journal slot and overwrites them."""
    mem = VectorMemory("crashy", path=tmp_path, embeddings=hashed())
    real_upsert = mem._upsert
    crash = {"armed": True}

    def upsert_then_crash(*args: Any) -> None:
        real_upsert(*args)
        if crash["armed"]:
            crash["armed"] = False
            raise ConnectionError("process died after the write")

    mem._upsert = upsert_then_crash  # type: ignore[method-assign]

    def node(state):
        return {"ids": mem.add(["remember me", "and me"])}

    g = StateGraph(S)
    g.add_node("write", node)
    g.add_edge(START, "write")
    g.add_edge("write", END)
    app = g.compile(checkpointer=MemoryCheckpointer())
    with pytest.raises(Exception, match="process died"):
        app.invoke({"topic": "x"}, thread="c1")
    assert mem.count() == 2
    out = app.invoke(None, thread="c1")
    assert mem.count() == 2 and len(out["ids"]) == 2


def test_import_is_lazy_and_a_missing_extra_names_it():
    code = ("import sys, graphflow.memory as m\n"
            "names = [getattr(m, n) for n in m.__all__]\n"
            "heavy = [x for x in ('torch', 'chromadb', 'numpy', 'sentence_transformers') "
            "if x in sys.modules]\n"
            "assert not heavy, heavy\n"
            "sys.modules['chromadb'] = None\n"
            "try:\n    m.VectorMemory('abc')\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install 'graphflow[memory]'" in out.stdout
