"""An in-process :class:`Checkpointer`: fast, and gone with the process."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ..errors import ThreadBusyError
from .base import Checkpoint, Checkpointer, PendingWrite

if TYPE_CHECKING:
    from .lease import Lease

__all__ = ["MemoryCheckpointer"]


class MemoryCheckpointer(Checkpointer):
    """Keeps every checkpoint of every thread in a dict. Thread-safe.

    Stored values are the engine's own state dicts, which it never mutates after a step, so a
    checkpoint costs no copy. Leases live in this object (one process).
    """

    def __init__(self) -> None:
        self._threads: dict[tuple[str, str], list[Checkpoint]] = {}  # (thread, ns) -> history
        self._writes: dict[tuple[str, str, str], dict[str, PendingWrite]] = {}
        self._journal: dict[tuple[str, str, str], dict[int, Any]] = {}
        self._lock = threading.Lock()

    def put(self, checkpoint: Checkpoint, *, lease: Lease | None = None) -> None:
        key = (checkpoint.thread, checkpoint.ns)
        with self._lock:
            if lease is not None and not self.holds_lease(lease.thread, lease.owner):
                raise ThreadBusyError(lease.thread, None, lost=True)
            self._threads.setdefault(key, []).append(checkpoint)

    def put_writes(self, thread: str, checkpoint_id: str, write: PendingWrite, *,
                   ns: str = "") -> None:
        with self._lock:
            self._writes.setdefault((thread, ns, checkpoint_id), {})[write.task_id] = write

    def get_writes(self, thread: str, checkpoint_id: str, *,
                   ns: str = "") -> dict[str, PendingWrite]:
        with self._lock:
            return dict(self._writes.get((thread, ns, checkpoint_id), {}))

    def put_journal(self, thread: str, task_id: str, index: int, value: Any, *,
                    ns: str = "") -> None:
        with self._lock:
            self._journal.setdefault((thread, ns, task_id), {})[index] = value

    def get_journal(self, thread: str, task_id: str, *, ns: str = "") -> list[Any]:
        with self._lock:
            entries = self._journal.get((thread, ns, task_id), {})
            return [entries[i] for i in sorted(entries)]

    def chain(self, thread: str, checkpoint_id: str | None = None, *,
              ns: str = "") -> list[Checkpoint]:
        cp = self.get(thread, checkpoint_id, ns=ns)
        return [] if cp is None else [cp]  # every record here keeps its values

    def get(self, thread: str, checkpoint_id: str | None = None, *,
            ns: str = "") -> Checkpoint | None:
        with self._lock:
            history = self._threads.get((thread, ns))
            if not history:
                return None
            if checkpoint_id is None:
                return history[-1]
            return next((c for c in history if c.id == checkpoint_id), None)

    def list(self, thread: str, *, limit: int | None = None, ns: str = "") -> list[Checkpoint]:
        with self._lock:
            history = self._threads.get((thread, ns), [])[::-1]
        return history if limit is None else history[:limit]

    def delete_thread(self, thread: str) -> None:
        with self._lock:
            for store in (self._threads, self._writes, self._journal):
                for key in [k for k in store if k[0] == thread]:
                    del store[key]
        self._lease_table().pop(thread, None)

    def threads(self) -> list[str]:
        with self._lock:
            return sorted({thread for thread, _ in self._threads})

    def namespaces(self, thread: str) -> list[str]:
        with self._lock:
            return sorted(ns for t, ns in self._threads if t == thread and ns)
