"""Embedders: OpenAI's SDK against a local server speaking the embeddings wire protocol, any
callable, names."""

from __future__ import annotations

import asyncio

import pytest
from graphflow.memory import (
    Embeddings,
    FunctionEmbeddings,
    MiniLMEmbeddings,
    OpenAIEmbeddings,
    as_embeddings,
)

from graphflow.testing.llm_servers import Fault, OpenAIServer, hashed_embedding

pytest.importorskip("openai", reason="OpenAIEmbeddings needs pip install 'graphflow[llm]'")


def test_openai_embeddings_through_the_sdk_batches_and_retries():
    with OpenAIServer([Fault.rate_limit(0.01), Fault.server_error()]) as server:
        emb = OpenAIEmbeddings("text-embedding-3-small", base_url=server.base_url,
                               api_key="test", dimensions=32, batch_size=3)
        texts = [f"text number {i}" for i in range(7)]
        vectors = emb.embed_documents(texts)
        assert len(vectors) == 7 and {len(v) for v in vectors} == {32}
        assert vectors[4] == pytest.approx(hashed_embedding("text number 4", 32))
        bodies = [b for b in server.bodies]
        assert len(bodies) == 2 + 3  # two faults retried by the SDK, then 3 + 3 + 1 texts
        assert [len(b["input"]) for b in bodies[2:]] == [3, 3, 1]
        assert all(b["model"] == "text-embedding-3-small" and b["dimensions"] == 32
                   and b["encoding_format"] == "float" for b in bodies)
        assert emb.dimension == 32 and emb.name == "openai:text-embedding-3-small:32"
        assert asyncio.run(emb.aembed_query("text number 1")) == pytest.approx(vectors[1])


def test_the_local_server_answers_base64_as_the_sdk_asks_by_default_and_validates():
    import openai

    with OpenAIServer() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        got = client.embeddings.create(model="m", input=["hello world"])
        assert server.bodies[-1]["encoding_format"] == "base64"  # the SDK's default
        assert got.data[0].embedding == pytest.approx(hashed_embedding("hello world"), abs=1e-6)
        with pytest.raises(openai.BadRequestError, match=r"\$\.input"):
            client.embeddings.create(model="m", input=[""])
        with pytest.raises(openai.BadRequestError, match="dimensions"):
            client.embeddings.create(model="m", input=["x"], dimensions=0)


def test_any_callable_and_names(monkeypatch):
    calls = []

    def embed(texts):
        calls.append(list(texts))
        return [[float(len(t)), 1.0] for t in texts]

    emb = as_embeddings(embed)
    assert isinstance(emb, FunctionEmbeddings) and isinstance(emb, Embeddings)
    assert emb.embed_documents(["ab", "abc"]) == [[2.0, 1.0], [3.0, 1.0]]
    assert emb.embed_documents([]) == [] and calls == [["ab", "abc"]]
    assert emb.dimension == 2
    normalized = FunctionEmbeddings(embed, normalize=True, name="n")
    assert sum(x * x for x in normalized.embed_query("abc")) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="returned 1 vectors for 2 texts"):
        FunctionEmbeddings(lambda t: [[1.0]]).embed_documents(["a", "b"])
    with pytest.raises(ValueError, match="different lengths"):
        FunctionEmbeddings(lambda t: [[1.0], [1.0, 2.0]]).embed_documents(["a", "b"])
    assert isinstance(as_embeddings("minilm"), MiniLMEmbeddings)
    with pytest.raises(ValueError, match="unknown embedder 'word2vec'"):
        as_embeddings("word2vec")
    with pytest.raises(TypeError, match="cannot use int"):
        as_embeddings(3)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="API key"):
        OpenAIEmbeddings(api_key="", base_url="http://127.0.0.1:9")
