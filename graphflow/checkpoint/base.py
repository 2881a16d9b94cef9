"""The :class:`Checkpointer` interface and the records it stores.

The engine commits a :class:`Checkpoint` at every superstep boundary of a run that has a thread:
the state, the tasks due next (so a run can resume after an error) and the progress of joins.
Sync methods are the ones to implement; the async ones default to calling them, and a
checkpointer doing real I/O overrides them.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .._random import random_hex
from .durable import DurableTables, acquire_in, release_in, renew_in

if TYPE_CHECKING:
    from .lease import Holder, Lease, Owner

__all__ = [
    "Checkpoint", "Checkpointer", "PendingWrite", "SnapshotTask", "StateSnapshot",
    "new_checkpoint_id", "now",
]


_TABLE_LOCK = threading.Lock()  # guards the in-process lease tables (short critical sections)


def new_checkpoint_id() -> str:
    """A new id: 32 hex digits, the time in milliseconds (12 digits) then 80 random bits.

    Ids made one after another sort near each other, so a store's index of them grows at one
    end instead of at a random page per step (a third fewer pages written per checkpoint in
    SQLite). Only uniqueness matters to graphflow: the order of a thread's checkpoints is the
    store's insertion order, never the order of their ids."""
    return f"{time.time_ns() // 1_000_000:012x}{random_hex(80)}"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Checkpoint:
    """The state of a thread at a superstep boundary.

    Attributes:
        id: unique id of this checkpoint.
        thread: the thread it belongs to.
        ns: the namespace inside the thread: ``""`` for the thread's own graph, a path of task
            ids for a subgraph's run (see ``graphflow.engine.ids``). Subgraph state lives apart
            from every user-chosen thread id.
        step: the superstep it was taken after (0: after the input).
        values: the state (a dict of key -> value), never mutated once handed over. A store may
            leave it out (delta storage): read back, it is then None and the state is rebuilt
            from the nearest snapshot plus the ``writes`` after it (see ``Checkpointer.chain``).
        next: the tasks due next, as ``(node, send_index, send_arg)``; empty when the run ended.
        joins: per join (by index), the sources that ran since it last fired.
        parent_id: the checkpoint before this one.
        created_at: when it was taken (UTC).
        metadata: ``{"source": "input" | "loop" | "update" | "fork"}`` and the like.
        writes: ``(node, key, value)`` applied by the step that made this checkpoint.
    """

    id: str
    thread: str
    step: int
    values: dict[str, Any]
    next: list[tuple[str, int, Any]]
    joins: dict[int, list[str]] = field(default_factory=dict)
    parent_id: str | None = None
    created_at: datetime = field(default_factory=now)
    metadata: dict[str, Any] = field(default_factory=dict)
    writes: list[tuple[str, str, Any]] = field(default_factory=list)
    ns: str = ""


@dataclass(frozen=True, slots=True)
class PendingWrite:
    """A finished task's outcome, stored the moment it finishes.

    When a step fails part-way (or the process dies), resuming restores the tasks that have one
    instead of running them again.
    """

    task_id: str
    node: str
    writes: list[tuple[str, Any]]
    update: Any = None
    goto: list[Any] | None = None


@dataclass(frozen=True, slots=True)
class SnapshotTask:
    """A task due at a checkpoint (``StateSnapshot.tasks``).

    Attributes:
        id: the task's id within its thread.
        name: the node it runs.
        interrupts: the :class:`Interrupt` s it is waiting on.
        result: its writes, when it finished before the run stopped (else None).
        state: for a subgraph node's task, with ``get_state(..., subgraphs=True)``: the
            subgraph run's own :class:`StateSnapshot` (None if it has not started).
    """

    id: str
    name: str
    interrupts: tuple[Any, ...] = ()
    result: Any = None
    state: Any = None


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """What :meth:`CompiledGraph.get_state` returns.

    ``config`` / ``parent_config`` point at this checkpoint and its parent the way LangGraph's
    configs do (``{"configurable": {"thread_id", "checkpoint_ns", "checkpoint_id"}}``): pass
    them back to ``invoke``, ``get_state`` or ``update_state``.
    """

    values: Any
    next: tuple[str, ...]
    interrupts: tuple[Any, ...]
    step: int
    checkpoint_id: str
    parent_id: str | None
    created_at: datetime
    metadata: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    parent_config: dict[str, Any] | None = None
    tasks: tuple[SnapshotTask, ...] = ()


class Checkpointer(DurableTables, ABC):
    """Where a compiled graph keeps its threads' checkpoints.

    Every method that reads or writes a thread's records takes ``ns``: the namespace inside the
    thread (``""``: the thread's own graph; a subgraph run's path otherwise). A thread's
    namespaces are deleted with it.

    Leases (one writer per thread): :meth:`acquire_lease`, :meth:`renew_lease` and
    :meth:`release_lease` must be atomic for every process that shares the store. The defaults
    here keep leases in this object, which is right for a store that lives in one process; a
    store shared by several processes decides them in its database.

    Durable waits, signals and entities (:class:`~graphflow.checkpoint.durable.DurableTables`)
    are kept the same way: in this object by default, in tables by the SQL stores.
    """

    #: Seconds a thread's lease lasts unless renewed (its holder renews it while it runs).
    lease_ttl: float = 30.0
    _leases: dict[str, tuple[Owner, float, float]]  # thread -> owner, expiry, since (monotonic)

    def _lease_table(self) -> dict[str, tuple[Owner, float, float]]:
        """The in-process leases (made on first use, so subclasses need not call ``__init__``)."""
        try:
            return self._leases
        except AttributeError:
            with _TABLE_LOCK:
                if "_leases" not in self.__dict__:
                    self._leases = {}
            return self._leases

    @abstractmethod
    def put(self, checkpoint: Checkpoint, *, lease: Lease | None = None) -> None:
        """Store ``checkpoint`` as the newest of its thread and namespace. With ``lease``, store
        it only if that lease still holds the thread (raise ``ThreadBusyError`` otherwise)."""

    @abstractmethod
    def get(self, thread: str, checkpoint_id: str | None = None, *,
            ns: str = "") -> Checkpoint | None:
        """The newest checkpoint of ``thread`` (or the one with ``checkpoint_id``), or None."""

    @abstractmethod
    def put_writes(self, thread: str, checkpoint_id: str, write: PendingWrite, *,
                   ns: str = "") -> None:
        """Store a finished task's outcome against the checkpoint its step started from."""

    @abstractmethod
    def get_writes(self, thread: str, checkpoint_id: str, *,
                   ns: str = "") -> dict[str, PendingWrite]:
        """The finished tasks' outcomes stored against ``checkpoint_id``, by task id."""

    @abstractmethod
    def chain(self, thread: str, checkpoint_id: str | None = None, *,
              ns: str = "") -> list[Checkpoint]:
        """From the nearest ancestor with ``values`` to the checkpoint (newest if None), oldest
        first; empty if there is no such checkpoint. Only the last record need be complete:
        of the others, replay reads ``values`` (the first) and ``writes``."""

    @abstractmethod
    def put_journal(self, thread: str, task_id: str, index: int, value: Any, *,
                    ns: str = "") -> None:
        """Record the ``index``-th journaled result of a task."""

    @abstractmethod
    def get_journal(self, thread: str, task_id: str, *, ns: str = "") -> list[Any]:
        """A task's journaled results, in order."""

    @abstractmethod
    def list(self, thread: str, *, limit: int | None = None, ns: str = "") -> list[Checkpoint]:
        """The checkpoints of ``thread`` (in namespace ``ns``), newest first."""

    @abstractmethod
    def delete_thread(self, thread: str) -> None:
        """Forget every checkpoint, pending write and journal entry of ``thread``, in every
        namespace, and its lease."""

    @abstractmethod
    def threads(self) -> list[str]:
        """The threads that have checkpoints, sorted."""

    @abstractmethod
    def namespaces(self, thread: str) -> list[str]:
        """The subgraph namespaces of ``thread`` that have checkpoints, sorted (``""`` left
        out)."""

    # -- leases -------------------------------------------------------------------------------

    def acquire_lease(self, thread: str, owner: Owner, ttl: float, *,
                      takeover: Owner | None = None) -> Holder | None:
        """Make ``owner`` the writer of ``thread`` for ``ttl`` seconds if the thread is free,
        its lease has expired, ``owner`` already holds it, or (``takeover``) its holder is
        exactly that owner (a dead process). Atomic. Returns None on success, else the holder."""
        return acquire_in(self._lease_table(), _TABLE_LOCK, thread, owner, ttl, takeover)

    def renew_lease(self, thread: str, owner: Owner, ttl: float) -> bool:
        """Extend ``owner``'s lease on ``thread``; False if it no longer holds it."""
        return renew_in(self._lease_table(), _TABLE_LOCK, thread, owner, ttl)

    def release_lease(self, thread: str, owner: Owner) -> None:
        """End ``owner``'s lease on ``thread`` (nothing if it does not hold it)."""
        release_in(self._lease_table(), _TABLE_LOCK, thread, owner)

    def holds_lease(self, thread: str, owner: Owner) -> bool:
        """Whether ``owner`` holds ``thread`` right now (the in-process fence of :meth:`put`)."""
        held = self._lease_table().get(thread)
        return held is not None and held[0].token == owner.token

    # -- async twins ----------------------------------------------------------------------------

    async def aput(self, checkpoint: Checkpoint, *, lease: Lease | None = None) -> None:
        self.put(checkpoint, lease=lease)

    async def aget(self, thread: str, checkpoint_id: str | None = None, *,
                   ns: str = "") -> Checkpoint | None:
        return self.get(thread, checkpoint_id, ns=ns)

    async def aput_writes(self, thread: str, checkpoint_id: str, write: PendingWrite, *,
                          ns: str = "") -> None:
        self.put_writes(thread, checkpoint_id, write, ns=ns)

    async def aget_writes(self, thread: str, checkpoint_id: str, *,
                          ns: str = "") -> dict[str, PendingWrite]:
        return self.get_writes(thread, checkpoint_id, ns=ns)

    async def achain(self, thread: str, checkpoint_id: str | None = None, *,
                     ns: str = "") -> list[Checkpoint]:
        return self.chain(thread, checkpoint_id, ns=ns)

    async def aput_journal(self, thread: str, task_id: str, index: int, value: Any, *,
                           ns: str = "") -> None:
        self.put_journal(thread, task_id, index, value, ns=ns)

    async def aget_journal(self, thread: str, task_id: str, *, ns: str = "") -> list[Any]:
        return self.get_journal(thread, task_id, ns=ns)

    async def athreads(self) -> list[str]:
        return self.threads()

    async def alist(self, thread: str, *, limit: int | None = None,
                    ns: str = "") -> list[Checkpoint]:
        return self.list(thread, limit=limit, ns=ns)

    async def adelete_thread(self, thread: str) -> None:
        self.delete_thread(thread)
