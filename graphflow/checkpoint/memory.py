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
        # per thread, so that deleting one touches nothing else: ns -> history;
        # (ns, checkpoint id) -> task id -> write; (ns, task id) -> index -> journal entry
        self._threads: dict[str, dict[str, list[Checkpoint]]] = {}
        self._writes: dict[str, dict[tuple[str, str], dict[str, PendingWrite]]] = {}
        self._journal: dict[str, dict[tuple[str, str], dict[int, Any]]] = {}
        self._lock = threading.Lock()

    def put(self, checkpoint: Checkpoint, *, lease: Lease | None = None) -> None:
        with self._lock:
            if lease is not None and not self.holds_lease(lease.thread, lease.owner):
                raise ThreadBusyError(lease.thread, None, lost=True)
            self._threads.setdefault(checkpoint.thread, {}).setdefault(
                checkpoint.ns, []).append(checkpoint)

    def put_writes(self, thread: str, checkpoint_id: str, write: PendingWrite, *,
                   ns: str = "") -> None:
        with self._lock:
            self._writes.setdefault(thread, {}).setdefault((ns, checkpoint_id), {})[
                write.task_id] = write

    def get_writes(self, thread: str, checkpoint_id: str, *,
                   ns: str = "") -> dict[str, PendingWrite]:
        with self._lock:
            return dict(self._writes.get(thread, {}).get((ns, checkpoint_id), {}))

    def put_journal(self, thread: str, task_id: str, index: int, value: Any, *,
                    ns: str = "") -> None:
        with self._lock:
            self._journal.setdefault(thread, {}).setdefault((ns, task_id), {})[index] = value

    def get_journal(self, thread: str, task_id: str, *, ns: str = "") -> list[Any]:
        with self._lock:
            entries = self._journal.get(thread, {}).get((ns, task_id))
            if not entries:
                return []  # the common case: a task running for the first time
            return [entries[i] for i in sorted(entries)]

    def chain(self, thread: str, checkpoint_id: str | None = None, *,
              ns: str = "") -> list[Checkpoint]:
        cp = self.get(thread, checkpoint_id, ns=ns)
        return [] if cp is None else [cp]  # every record here keeps its values

    def get(self, thread: str, checkpoint_id: str | None = None, *,
            ns: str = "") -> Checkpoint | None:
        with self._lock:
            history = self._threads.get(thread, {}).get(ns)
            if not history:
                return None
            if checkpoint_id is None:
                return history[-1]
            return next((c for c in history if c.id == checkpoint_id), None)

    def list(self, thread: str, *, limit: int | None = None, ns: str = "") -> list[Checkpoint]:
        with self._lock:
            history = self._threads.get(thread, {}).get(ns, [])[::-1]
        return history if limit is None else history[:limit]

    def delete_thread(self, thread: str) -> None:
        with self._lock:
            for store in (self._threads, self._writes, self._journal):
                store.pop(thread, None)
        self._lease_table().pop(thread, None)
        self._forget_durable([thread])

    def threads(self) -> list[str]:
        with self._lock:
            return sorted(t for t, spaces in self._threads.items() if spaces)

    def namespaces(self, thread: str) -> list[str]:
        with self._lock:
            return sorted(ns for ns in self._threads.get(thread, {}) if ns)
