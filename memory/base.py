"""What every memory shares: a search hit, the protocols nodes and agents rely on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from graphflow.checkpoint.serde import register_type

__all__ = ["MemoryHit", "Prepares", "Searchable"]


@dataclass
class MemoryHit:
    """One search result.

    Attributes:
        id: the record's id (pass it to ``delete`` or ``add(ids=...)`` to replace it).
        text: the stored text.
        metadata: the stored metadata.
        score: higher is better; cosine similarity in ``[-1, 1]`` for vector search, a fused
            rank score for hybrid search, whatever a re-ranker returns after one.
    """

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    score: float = 0.0


register_type(MemoryHit, name="graphflow.MemoryHit")  # hits may be kept in the state


@runtime_checkable
class Searchable(Protocol):
    """A long-term memory that nodes and tools can read and write: :class:`VectorMemory`,
    :class:`StoreMemory` (a namespace of a store), or your own."""

    def search(self, query: str, k: int = 5, *, where: dict[str, Any] | None = None,
               ) -> list[MemoryHit]: ...

    def add(self, texts: Sequence[str], *, metadatas: Sequence[dict[str, Any] | None] | None = None,
            ids: Sequence[str] | None = None) -> list[str]: ...


@runtime_checkable
class Prepares(Protocol):
    """What an agent asks of a conversation memory: the messages the model sees this turn
    (trimmed, summarized, augmented with recalled memories). ``aprepare`` is optional."""

    def prepare(self, messages: list[Any]) -> list[Any]: ...
