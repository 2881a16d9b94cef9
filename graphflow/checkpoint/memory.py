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
        # per thread (so deleting one touches nothing else): checkpoint id -> task id -> write,
        # and task id -> index -> journal entry
        self._writes: dict[str, dict[str, dict[str, PendingWrite]]] = {}
        self._journal: dict[str, dict[str, dict[int, Any]]] = {}
        self._lock = threading.Lock()

    def put(self, checkpoint: Checkpoint, *, pending: PendingWrite | None = None) -> None:
        with self._lock:
            if pending is not None:
                self._writes.setdefault(checkpoint.thread, {}).setdefault(
                    checkpoint.parent_id or "", {})[pending.task_id] = pending
            history = self._threads.get(checkpoint.thread)
            if history is None:
                self._threads[checkpoint.thread] = [checkpoint]
            else:
                history.append(checkpoint)

    def put_writes(self, thread: str, checkpoint_id: str, write: PendingWrite) -> None:
        with self._lock:
            self._writes.setdefault(thread, {}).setdefault(checkpoint_id, {})[
                write.task_id] = write

    def get_writes(self, thread: str, checkpoint_id: str) -> dict[str, PendingWrite]:
        with self._lock:
            return dict(self._writes.get(thread, {}).get(checkpoint_id, {}))

    def put_journal(self, thread: str, task_id: str, index: int, value: Any) -> None:
        with self._lock:
            self._journal.setdefault(thread, {}).setdefault(task_id, {})[index] = value

    def get_journal(self, thread: str, task_id: str) -> list[Any]:
        with self._lock:
            entries = self._journal.get(thread, {}).get(task_id)
            if not entries:
                return []  # the common case: a task running for the first time
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
            self._writes.pop(thread, None)
            self._journal.pop(thread, None)

    def threads(self) -> list[str]:
        with self._lock:
            return sorted(self._threads)
