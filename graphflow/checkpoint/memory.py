"""An in-process :class:`Checkpointer`: fast, and gone with the process."""

from __future__ import annotations

import threading
from typing import Any

from .base import Checkpoint, Checkpointer, PendingWrite

__all__ = ["MemoryCheckpointer"]


class MemoryCheckpointer(Checkpointer):
    """Keeps every checkpoint of every thread in a dict. Thread-safe.

    Stored values are the engine's own state dicts, which it never mutates after a step, so a
    checkpoint costs no copy.
    """

    def __init__(self) -> None:
        self._threads: dict[str, list[Checkpoint]] = {}
        self._writes: dict[tuple[str, str], dict[str, PendingWrite]] = {}
        self._journal: dict[tuple[str, str], dict[int, Any]] = {}
        self._lock = threading.Lock()

    def put(self, checkpoint: Checkpoint, *, pending: PendingWrite | None = None) -> None:
        with self._lock:
            if pending is not None:
                self._writes.setdefault((checkpoint.thread, checkpoint.parent_id or ""),
                                        {})[pending.task_id] = pending
            self._threads.setdefault(checkpoint.thread, []).append(checkpoint)

    def put_writes(self, thread: str, checkpoint_id: str, write: PendingWrite) -> None:
        with self._lock:
            self._writes.setdefault((thread, checkpoint_id), {})[write.task_id] = write

    def get_writes(self, thread: str, checkpoint_id: str) -> dict[str, PendingWrite]:
        with self._lock:
            return dict(self._writes.get((thread, checkpoint_id), {}))

    def put_journal(self, thread: str, task_id: str, index: int, value: Any) -> None:
        with self._lock:
            self._journal.setdefault((thread, task_id), {})[index] = value

    def get_journal(self, thread: str, task_id: str) -> list[Any]:
        with self._lock:
            entries = self._journal.get((thread, task_id), {})
            return [entries[i] for i in sorted(entries)]

    def chain(self, thread: str, checkpoint_id: str | None = None) -> list[Checkpoint]:
        cp = self.get(thread, checkpoint_id)
        return [] if cp is None else [cp]  # every record here keeps its values

    def get(self, thread: str, checkpoint_id: str | None = None) -> Checkpoint | None:
        with self._lock:
            history = self._threads.get(thread)
            if not history:
                return None
            if checkpoint_id is None:
                return history[-1]
            return next((c for c in history if c.id == checkpoint_id), None)

    def list(self, thread: str, *, limit: int | None = None) -> list[Checkpoint]:
        with self._lock:
            history = self._threads.get(thread, [])[::-1]
        return history if limit is None else history[:limit]

    def delete_thread(self, thread: str) -> None:
        with self._lock:
            self._threads.pop(thread, None)
            for store in (self._writes, self._journal):
                for key in [k for k in store if k[0] == thread]:
                    del store[key]

    def threads(self) -> list[str]:
        with self._lock:
            return sorted(self._threads)
