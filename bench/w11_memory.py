"""W11 -- memory: MiniLM + chromadb vector memory, trimming, retrieval quality.

``W11_ingest_docs_per_s``: ``VectorMemory.ingest`` of 2,000 short documents (quick: 500) into a
fresh embedded collection, batches of 64, MiniLM embedding included (the model loaded before).

``W11_search_p50_ms``: median ``search(query, k=5)`` over 10,000 memories (quick: 1,000),
embedding the query included; 200 different queries (quick: 50).

``W11_overhead_p50_ms``: graphflow's own cost in a search: median ``search()`` with an embedder
that returns a precomputed vector, minus median chromadb ``collection.query`` for the same
vectors (same include list), paired query by query.

``W11_chroma_query_p50_ms``: that chromadb query alone, for reference.

``W11_embed_query_p50_ms``: MiniLM embedding one query.

``W11_import_memory_ms``: ``import graphflow.memory`` plus touching every public name in a fresh
child; the child also checks that torch, chromadb and numpy were not imported.
``W11_first_embed_s``: in a fresh child, the first ``MiniLMEmbeddings().embed_query`` (PyTorch
import and model load: the cost the lazy load moves out of import time).

``W11_trim_10k_ms``: ``trim_messages`` over a 10,000-message history (system prompt, alternating
turns) to a 4,000-token window, as an agent trims its history each turn (the per-message token
counts of earlier turns remembered). ``W11_trim_10k_cold_ms``: the same over messages never
counted before (every message of the window encoded).

``W11_recall``: recall@1 / @5 on tests/data/memory_retrieval.json for plain MiniLM vectors,
hybrid (BM25 + vectors), and each with the ``identifier_boost`` re-ranker.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import check, median_ns, rnd

REPO = Path(__file__).resolve().parent.parent
WORDS = ["garden", "kitchen", "meeting", "invoice", "travel", "doctor", "train", "coffee",
         "music", "budget", "school", "weekend", "laptop", "printer", "flight", "dinner",
         "sister", "project", "deadline", "hotel"]


def _docs(n: int) -> list[str]:
    out = []
    for i in range(n):
        a, b, c = WORDS[i % 20], WORDS[(i * 7) % 20], WORDS[(i * 13) % 20]
        out.append(f"Note {i}: the user mentioned the {a} and the {b} while talking about {c}.")
    return out


def _p50(values: list[float]) -> float:
    return statistics.median(values)


def _child(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed: {proc.stderr[-2000:]}")
    return proc.stdout.strip().splitlines()[-1]


def _lazy() -> dict:
    import_code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "import graphflow.memory as m\n"
        "[getattr(m, n) for n in m.__all__]\n"
        "ms = (time.perf_counter() - t) * 1000\n"
        "heavy = [x for x in ('torch', 'chromadb', 'numpy') if x in sys.modules]\n"
        "print(ms if not heavy else -1)\n")
    _child(import_code)  # warm __pycache__
    times = [float(_child(import_code)) for _ in range(3)]
    check(min(times) >= 0, "importing graphflow.memory imported torch, chromadb or numpy")
    first = float(_child(
        "import time\nfrom graphflow.memory import MiniLMEmbeddings\n"
        "t = time.perf_counter()\nMiniLMEmbeddings().embed_query('hello')\n"
        "print(time.perf_counter() - t)\n"))
    return {"W11_import_memory_ms": rnd(_p50(times)), "W11_first_embed_s": rnd(first)}


def _trim(quick: bool) -> dict:
    from graphflow.memory import trim_messages

    from graphflow.messages import AIMessage, HumanMessage, SystemMessage
    from graphflow.models.tokens import count_tokens

    def make(tag: str) -> list:
        history: list = [SystemMessage(content="You are a helpful assistant.")]
        for i in range(5000):
            history.append(HumanMessage(content=f"Question {i}: what should I pack for {tag}?"))
            history.append(AIMessage(content=f"Answer {i}: a rain jacket and a map for {tag}."))
        return history

    count_tokens("load the encoding first")
    cold = []
    for n in range(3):  # never-seen messages: every message in the window is encoded
        fresh = make(f"trip {n}")
        t0 = time.perf_counter_ns()
        trim_messages(fresh, 4000)
        cold.append((time.perf_counter_ns() - t0) / 1e6)
    history = make("the trip")
    out = trim_messages(history, 4000)
    check(count_tokens(out) <= 4000 and out[-1] is history[-1] and out[0] is history[0],
          "trim_messages returned a wrong window")
    return {"W11_trim_10k_ms": rnd(median_ns(lambda: trim_messages(history, 4000),
                                            quick=quick) / 1e6),
            "W11_trim_10k_cold_ms": rnd(_p50(cold))}


def _vector(quick: bool) -> dict:
    from graphflow.memory import FunctionEmbeddings, MiniLMEmbeddings, VectorMemory

    emb = MiniLMEmbeddings()
    emb.embed_query("warm up")
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        n_ingest = 500 if quick else 2000
        mem = VectorMemory("ingest-bench", path=Path(tmp) / "a", embeddings=emb)
        docs = _docs(n_ingest)
        t0 = time.perf_counter()
        ids = mem.ingest(docs, chunking=None, batch_size=64)
        elapsed = time.perf_counter() - t0
        check(mem.count() == n_ingest == len(ids), "ingest lost documents")
        out["W11_ingest_docs_per_s"] = rnd(n_ingest / elapsed)

        n = 1000 if quick else 10_000
        mem = VectorMemory("search-bench", path=Path(tmp) / "b", embeddings=emb)
        mem.ingest(_docs(n), chunking=None, batch_size=256)
        check(mem.count() == n, "search corpus incomplete")
        queries = [f"what did the user say about the {WORDS[i % 20]} and {WORDS[(i * 3) % 20]}"
                   f" ({i})" for i in range(50 if quick else 200)]
        for q in queries[:5]:
            mem.search(q, 5)
        full, embed = [], []
        for q in queries:
            t0 = time.perf_counter_ns()
            hits = mem.search(q, 5)
            full.append((time.perf_counter_ns() - t0) / 1e6)
            check(len(hits) == 5, "search returned fewer than k hits")
            t0 = time.perf_counter_ns()
            emb.embed_query(q)
            embed.append((time.perf_counter_ns() - t0) / 1e6)
        out["W11_search_p50_ms"] = rnd(_p50(full))
        out["W11_embed_query_p50_ms"] = rnd(_p50(embed))
        out["W11_search_memories"] = n

        vectors = emb.embed_documents(queries)
        current: list = []
        fixed = FunctionEmbeddings(lambda texts: [current[0]] * len(texts), name=emb.name,
                                   dimension=384)
        same = VectorMemory("search-bench", path=Path(tmp) / "b", embeddings=fixed)
        include = ["documents", "metadatas", "distances"]
        ours, theirs = [], []
        for _ in range(3):
            for q, v in zip(queries, vectors, strict=True):
                current[:] = [v]
                t0 = time.perf_counter_ns()
                same.search(q, 5)
                ours.append((time.perf_counter_ns() - t0) / 1e6)
                t0 = time.perf_counter_ns()
                same.collection.query(query_embeddings=[v], n_results=5, include=include)
                theirs.append((time.perf_counter_ns() - t0) / 1e6)
        out["W11_chroma_query_p50_ms"] = rnd(_p50(theirs))
        out["W11_overhead_p50_ms"] = rnd(_p50([a - b for a, b in zip(ours, theirs,
                                                                      strict=True)]))
    return out


def _recall() -> dict:
    from graphflow.memory import MiniLMEmbeddings, VectorMemory
    from graphflow.memory.evaluation import recall_at_k
    from graphflow.memory.keyword import identifier_boost

    data = json.loads((REPO / "tests" / "data" / "memory_retrieval.json").read_text())
    docs = {**data["facts"], **data["distractors"]}
    cases = [tuple(c) for c in data["questions"]]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        mem = VectorMemory("recall-bench", path=tmp, embeddings=MiniLMEmbeddings())
        mem.add(list(docs.values()), ids=list(docs))
        for label, kw in (("vector", {}), ("hybrid", {"mode": "hybrid"}),
                          ("vector_rerank", {"rerank": identifier_boost}),
                          ("hybrid_rerank", {"mode": "hybrid", "rerank": identifier_boost})):
            got = recall_at_k(lambda q, k, kw=kw: [h.id for h in mem.search(q, k, **kw)], cases)
            out[label] = {k: rnd(v) for k, v in got.items()}
    return {"W11_recall": out}


def run(quick: bool) -> dict:
    result: dict = {}
    result.update(_trim(quick))
    result.update(_lazy())
    result.update(_vector(quick))
    result.update(_recall())
    return result
