""":class:`EpisodicMemory`: past attempts at tasks, found again by similarity to a new task."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._durable import content_id, durable, slot_ids
from .store.base import BaseStore, namespace_key

__all__ = ["Episode", "EpisodicMemory", "task_pattern"]

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[^\W_]+|#")


def task_pattern(task: str, words: int = 6) -> str:
    """A task's pattern: lower case, numbers as ``#``, its first ``words`` words
    (``"Convert 25 USD to EUR"`` -> ``"convert # usd to eur"``)."""
    return " ".join(_WORD.findall(_NUMBER.sub("#", task.lower()))[:words])


@dataclass
class Episode:
    """One attempt at a task: what was asked, what was done, how it ended."""

    task: str
    steps: list[str]
    outcome: str
    success: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    pattern: str = ""
    id: str = ""
    created_at: float = 0.0
    score: float | None = None

    def as_text(self) -> str:
        """The episode as a few-shot example."""
        steps = "\n".join(f"  {i}. {s}" for i, s in enumerate(self.steps, 1))
        verdict = "succeeded" if self.success else "failed"
        return f"Task: {self.task}\nSteps:\n{steps}\nOutcome ({verdict}): {self.outcome}"


class EpisodicMemory:
    """Episodes kept in a store, searched by the meaning of their task.

    Args:
        store: a store with embeddings (default: an in-memory :class:`SqliteStore` with the
            given ``embeddings``, MiniLM if none).
        namespace: where episodes live in the store.
    """

    def __init__(self, store: BaseStore | None = None, *, embeddings: Any = None,
                 namespace: Sequence[str] = ("episodes",)) -> None:
        if store is None:
            from .embeddings import MiniLMEmbeddings
            from .store.sqlite import SqliteStore

            store = SqliteStore(embeddings=embeddings or MiniLMEmbeddings(), index=("task",))
        if store.embeddings is None:
            raise ValueError("EpisodicMemory needs a store with embeddings (to find similar "
                             "tasks), e.g. SqliteStore(path, embeddings='minilm')")
        self.store = store
        self.namespace = tuple(namespace)
        self._label = namespace_key(self.namespace)

    def record(self, task: str, steps: Sequence[str], outcome: str, success: bool, *,
               metadata: dict[str, Any] | None = None, pattern: str | None = None) -> str:
        """Store an episode; returns its id (idempotent under resume, like every memory
        write made inside a node)."""
        value = {"task": task, "steps": [str(s) for s in steps], "outcome": outcome,
                 "success": bool(success), "metadata": dict(metadata or {}),
                 "pattern": pattern or task_pattern(task), "at": time.time()}

        def write(slot: str | None) -> str:
            key = (slot_ids(slot, 1, self._label)[0] if slot is not None
                   else content_id(repr((task, value["steps"], outcome)), self._label))
            self.store.put(self.namespace, key, value, index=["task"])
            return key

        return durable(f"memory:episode:{self._label}", write)

    @staticmethod
    def _episode(item: Any) -> Episode:
        v = item.value
        return Episode(v["task"], list(v["steps"]), v["outcome"], bool(v["success"]),
                       dict(v.get("metadata") or {}), v.get("pattern", ""), item.key,
                       float(v.get("at", item.created_at)), item.score)

    def similar(self, task: str, k: int = 3, *, success: bool | None = None) -> list[Episode]:
        """The ``k`` episodes whose tasks are most similar to ``task`` (``success``: only
        successful or only failed ones)."""
        where = None if success is None else {"success": success}
        items = self.store.search(self.namespace, query=task, filter=where, limit=k)
        return [self._episode(i) for i in items]

    def episodes(self, pattern: str | None = None, limit: int = 1000) -> list[Episode]:
        """Recorded episodes, newest first (``pattern``: only that pattern's)."""
        where = None if pattern is None else {"pattern": pattern}
        return [self._episode(i) for i in self.store.search(self.namespace, filter=where,
                                                             limit=limit)]

    def success_rate(self, pattern: str | None = None) -> dict[str, tuple[float, int]]:
        """Per task pattern: ``(share of successful episodes, number of episodes)``; with
        ``pattern``, that pattern's only (a task text is turned into its pattern)."""
        if pattern is not None and pattern != task_pattern(pattern):
            pattern = task_pattern(pattern)
        counts: dict[str, list[int]] = {}
        for ep in self.episodes(pattern, limit=100_000):
            c = counts.setdefault(ep.pattern, [0, 0])
            c[0] += ep.success
            c[1] += 1
        return {p: (ok / n, n) for p, (ok, n) in sorted(counts.items())}

    def few_shot(self, task: str, k: int = 2, *, only_successful: bool = True) -> str:
        """Similar past episodes as examples for a prompt ("" when there are none)."""
        found = self.similar(task, k, success=True if only_successful else None)
        return "\n\n".join(ep.as_text() for ep in found)
