"""Retrieval quality on a labelled set (tests/data/memory_retrieval.json), end to end: real
MiniLM embeddings, real chromadb, the SQLite FTS5 keyword index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from graphflow.memory import VectorMemory
from graphflow.memory.evaluation import recall_at_k
from graphflow.memory.keyword import identifier_boost

pytest.importorskip("chromadb", reason="VectorMemory needs pip install 'graphflow[memory]'")

DATA = json.loads((Path(__file__).parent / "data" / "memory_retrieval.json").read_text())


@pytest.fixture(scope="module")
def memory(minilm, tmp_path_factory):
    mem = VectorMemory("retrieval", path=tmp_path_factory.mktemp("retrieval"), embeddings=minilm)
    docs = {**DATA["facts"], **DATA["distractors"]}
    mem.add(list(docs.values()), ids=list(docs))
    return mem


def score(memory, **search) -> dict[str, float]:
    return recall_at_k(lambda q, k: [h.id for h in memory.search(q, k, **search)],
                       [tuple(case) for case in DATA["questions"]])


def test_the_set_is_well_formed():
    facts, distractors = DATA["facts"], DATA["distractors"]
    assert len(DATA["questions"]) == len(facts) == 50 and len(distractors) >= 100
    assert {e for _, e in DATA["questions"]} == set(facts)  # every fact asked for once
    assert not set(facts) & set(distractors)


def test_plain_minilm_recall_at_5_is_at_least_0_9(memory):
    got = score(memory)
    assert got["recall@5"] >= 0.9, got


def test_hybrid_search_and_a_rerank_hook_do_better_than_plain_vectors(memory):
    plain = score(memory)
    hybrid = score(memory, mode="hybrid")
    assert hybrid["recall@1"] >= plain["recall@1"] and hybrid["recall@5"] >= plain["recall@5"]
    assert hybrid != plain, (hybrid, plain)
    reranked = score(memory, rerank=identifier_boost)
    assert reranked["recall@1"] > plain["recall@1"], (reranked, plain)
    keyword = score(memory, mode="keyword")
    assert keyword["recall@5"] < plain["recall@5"]  # paraphrases need meaning, not words


def test_minilm_vectors_are_normalized_and_similar_sentences_are_close(minilm):
    a, b, c = minilm.embed_documents(["The cat sits on the mat.", "A cat is sitting on a rug.",
                                      "Quarterly revenue grew by four percent."])
    assert len(a) == minilm.dimension == 384
    assert abs(sum(x * x for x in a) - 1.0) < 1e-4
    dot = lambda u, v: sum(x * y for x, y in zip(u, v, strict=True))  # noqa: E731
    assert dot(a, b) > dot(a, c) + 0.3
    assert minilm.embed_query("The cat sits on the mat.") == pytest.approx(a, abs=1e-5)
