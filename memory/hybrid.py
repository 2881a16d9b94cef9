""":class:`HybridMemory`: recent turns plus relevant long-term memories, under one budget."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphflow.messages import HumanMessage, Message, SystemMessage

from .base import MemoryHit
from .conversation import ConversationMemory, _as_list, _counter
from .nodes import _last_text, resolve_memory

__all__ = ["HybridMemory"]


class HybridMemory:
    """What the model sees: pinned system messages, the memories most relevant to the last
    user message (as one system message), then as many recent turns as the rest of the budget
    holds (with the conversation's running summary, if it has a summarizer).

    Implements ``prepare``/``aprepare`` (see :class:`Prepares`), so an agent can use it.

    Args:
        long_term: a :class:`VectorMemory`, :class:`StoreMemory` or a store (+ ``namespace``).
        max_tokens: the budget for everything the model sees.
        k: memories to recall. ``min_score``: drop weaker hits.
        memory_share: the most of the budget the memories may take (the rest is for turns).
        conversation: the recent-turns window (default: a plain ConversationMemory).
        search: extra keyword arguments for ``long_term.search`` (``mode="hybrid"``, ...).
    """

    def __init__(self, long_term: Any, *, max_tokens: int = 3000, k: int = 5,
                 min_score: float | None = None, memory_share: float = 0.3,
                 conversation: ConversationMemory | None = None, model: str = "gpt-4o-mini",
                 namespace: Sequence[str] = ("memories",),
                 search: dict[str, Any] | None = None) -> None:
        if not 0 < memory_share < 1:
            raise ValueError(f"memory_share must be between 0 and 1, got {memory_share}")
        self.long_term = resolve_memory(long_term, None, namespace, "HybridMemory")
        self.max_tokens = max_tokens
        self.k = k
        self.min_score = min_score
        self.memory_share = memory_share
        self.conversation = conversation or ConversationMemory(max_tokens, model=model)
        self.count = _counter(model, self.conversation.token_counter)
        self.search_kw = dict(search or {})

    def _memory_message(self, hits: list[MemoryHit]) -> SystemMessage | None:
        """The recalled memories that fit in their share of the budget, best first."""
        if self.min_score is not None:
            hits = [h for h in hits if h.score >= self.min_score]
        limit = int(self.max_tokens * self.memory_share)
        while hits:
            msg = SystemMessage(id="recalled-memories", content=(
                "Relevant long-term memories (may be useful, may be outdated):\n"
                + "\n".join(f"- {h.text}" for h in hits)))
            if self.count(msg) <= limit:
                return msg
            hits = hits[:-1]
        return None

    def _assemble(self, msgs: list[Message], memory: SystemMessage | None,
                  window: list[Message]) -> list[Message]:
        if memory is None:
            return window
        n = 0
        while n < len(window) and type(window[n]) is SystemMessage and window[n].id != (
                "conversation-summary"):
            n += 1
        return [*window[:n], memory, *window[n:]]

    def _query(self, msgs: list[Message]) -> str:
        return _last_text(msgs, HumanMessage)

    def prepare(self, messages: Any) -> list[Message]:
        """What the model sees this turn."""
        msgs = _as_list(messages)
        query = self._query(msgs)
        hits = self.long_term.search(query, self.k, **self.search_kw) if query else []
        memory = self._memory_message(hits)
        rest = self.max_tokens - (self.count(memory) if memory is not None else 0)
        return self._assemble(msgs, memory, self.conversation.prepare(msgs, max_tokens=rest))

    async def aprepare(self, messages: Any) -> list[Message]:
        """Async :meth:`prepare`."""
        msgs = _as_list(messages)
        query = self._query(msgs)
        search = getattr(self.long_term, "asearch", None)
        hits: list[MemoryHit] = []
        if query:
            hits = (await search(query, self.k, **self.search_kw) if search is not None
                    else self.long_term.search(query, self.k, **self.search_kw))
        memory = self._memory_message(hits)
        rest = self.max_tokens - (self.count(memory) if memory is not None else 0)
        window = await self.conversation.aprepare(msgs, max_tokens=rest)
        return self._assemble(msgs, memory, window)

    def __repr__(self) -> str:
        return f"HybridMemory({self.long_term!r}, max_tokens={self.max_tokens}, k={self.k})"
