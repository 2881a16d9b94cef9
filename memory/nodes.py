"""Memory as graph nodes and tools: :class:`RecallNode`, :class:`RememberNode`,
:func:`memory_tools`.

Each takes a memory (a :class:`VectorMemory`, a :class:`StoreMemory`, anything
:class:`Searchable`) or, with ``memory=None``, uses the graph's store (``compile(store=...)``)
under ``namespace``. Nodes are drawn with the ``"memory"`` kind in diagrams. Writes are
idempotent under resume: a resumed node or tool replays its journaled write, and the ids it
writes are derived from its task and journal slot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from graphflow.errors import GraphflowError
from graphflow.messages import AIMessage, HumanMessage, Message

from .base import MemoryHit, Searchable

__all__ = ["RecallNode", "RememberNode", "memory_tools", "resolve_memory"]

Source = str | Callable[[Any], Any]


def _get(state: Any, key: str) -> Any:
    return state.get(key) if isinstance(state, dict) else getattr(state, key, None)


def resolve_memory(memory: Any, store: Any, namespace: Sequence[str], where: str) -> Searchable:
    """The memory to use: the given one, a store wrapped as one namespace, or the run's store."""
    from .store.base import BaseStore, StoreMemory

    if memory is None:
        memory = store
        if memory is None:
            raise GraphflowError(f"{where} has no memory: pass memory=... or give the graph a "
                                 f"store (compile(store=SqliteStore(...)))")
    if isinstance(memory, BaseStore):
        return StoreMemory(memory, namespace)
    if not isinstance(memory, Searchable):
        raise TypeError(f"{where}: {memory!r} is not a memory (it needs search() and add())")
    return memory


def _last_text(value: Any, kind: type[Message] | None = None) -> str:
    """A query/text from a state value: a string, or the last (user) message's content."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        for m in reversed(value):
            if isinstance(m, Message) and (kind is None or isinstance(m, kind)) and m.content:
                return m.content
        return ""
    return "" if value is None else str(value)


def _read(state: Any, source: Source, kind: type[Message] | None) -> Any:
    return source(state) if callable(source) else _last_text(_get(state, source), kind)


class RecallNode:
    """Search memory with a query taken from the state; put the hits into a state key.

    Args:
        memory: what to search (None: the graph's store, under ``namespace``).
        query: a state key (a string, or messages: the last user message is the query) or a
            function ``state -> query``.
        output_key: the state key that receives the hits (a list of :class:`MemoryHit`).
        k: how many hits. ``where``: a metadata filter. ``search``: extra keyword arguments for
            ``memory.search`` (``mode="hybrid"``, ``rerank=...``).
        as_text: put a formatted text block instead of the hits (for prompts).
    """

    graphflow_kind = "memory"

    def __init__(self, memory: Any = None, *, query: Source = "messages",
                 output_key: str = "memories", k: int = 5, where: dict[str, Any] | None = None,
                 namespace: Sequence[str] = ("memories",), as_text: bool = False,
                 search: dict[str, Any] | None = None) -> None:
        self.memory = memory
        self.query = query
        self.output_key = output_key
        self.k = k
        self.where = where
        self.namespace = tuple(namespace)
        self.as_text = as_text
        self.search_kw = dict(search or {})
        self.__name__ = "recall"

    def __call__(self, state: Any, store: Any = None) -> dict[str, Any]:
        memory = resolve_memory(self.memory, store, self.namespace, "RecallNode")
        query = _read(state, self.query, HumanMessage)
        hits: list[MemoryHit] = []
        if query:
            hits = memory.search(query, self.k, where=self.where, **self.search_kw)
        if self.as_text:
            return {self.output_key: format_hits(hits)}
        return {self.output_key: hits}


def format_hits(hits: Sequence[MemoryHit]) -> str:
    """Hits as a bullet list for a prompt ("" when there are none)."""
    return "\n".join(f"- {h.text}" for h in hits)


class RememberNode:
    """Write texts from the state into memory (idempotent under resume).

    Args:
        memory: where to write (None: the graph's store, under ``namespace``).
        text: a state key (a string, a list of strings, or messages: the last AI answer by
            default, see ``role``) or a function ``state -> text or list of texts``.
        metadata: a dict, or a function ``state -> dict``, stored with each text.
        output_key: if given, the state key that receives the written ids.
        role: ``"ai"``, ``"human"`` or None (any) — which message a messages key gives.
    """

    graphflow_kind = "memory"

    def __init__(self, memory: Any = None, *, text: Source = "messages",
                 metadata: dict[str, Any] | Callable[[Any], dict[str, Any]] | None = None,
                 output_key: str | None = None, namespace: Sequence[str] = ("memories",),
                 role: str | None = "ai") -> None:
        self.memory = memory
        self.text = text
        self.metadata = metadata
        self.output_key = output_key
        self.namespace = tuple(namespace)
        self.kind = {"ai": AIMessage, "human": HumanMessage, None: None}[role]
        self.__name__ = "remember"

    def __call__(self, state: Any, store: Any = None) -> dict[str, Any]:
        memory = resolve_memory(self.memory, store, self.namespace, "RememberNode")
        if callable(self.text):
            value = self.text(state)
        else:
            raw = _get(state, self.text)
            value = raw if isinstance(raw, list) and all(isinstance(x, str) for x in raw) \
                else _last_text(raw, self.kind)
        texts = [value] if isinstance(value, str) else list(value or [])
        texts = [t for t in texts if t]
        meta = self.metadata(state) if callable(self.metadata) else self.metadata
        ids = memory.add(texts, metadatas=[meta] * len(texts)) if texts else []
        return {self.output_key: ids} if self.output_key else {}


def memory_tools(memory: Any = None, *, namespace: Sequence[str] = ("memories",), k: int = 5,
                 ) -> list[Any]:
    """``remember(text)`` and ``recall(query)`` tools for an agent.

    With ``memory=None`` the tools use the graph's store (injected into their ``store``
    parameter) under ``namespace``. A ``remember`` call made by a resumed ToolNode is not
    written twice (its result is journaled; its id comes from the call's journal slot).
    """
    from graphflow.tools import tool

    def target(store: Any) -> Searchable:
        return resolve_memory(memory, store, namespace, "memory tool")

    @tool
    def remember(text: str, store=None) -> str:
        """Save a fact worth remembering in long-term memory.

        Args:
            text: the fact, as one self-contained sentence.
        """
        ids = target(store).add([text])
        return f"Remembered (id {ids[0]})."

    @tool
    def recall(query: str, store=None) -> str:
        """Search long-term memory for facts relevant to a query.

        Args:
            query: what to look for.
        """
        hits = target(store).search(query, k)
        return format_hits(hits) or "Nothing relevant is remembered."

    return [remember, recall]
