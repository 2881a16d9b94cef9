"""The :class:`Checkpointer` interface and the records it stores.

The engine commits a :class:`Checkpoint` at every superstep boundary of a run that has a thread:
the state, the tasks due next (so a run can resume after an error) and the progress of joins.
Sync methods are the ones to implement; the async ones default to calling them, and a
checkpointer doing real I/O overrides them.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "Checkpoint", "Checkpointer", "PendingWrite", "StateSnapshot", "new_checkpoint_id", "now",
]


def new_checkpoint_id() -> str:
    """128 random bits in hex (a uuid4's form without its cost: the engine makes one a step)."""
    return os.urandom(16).hex()


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Checkpoint:
    """The state of a thread at a superstep boundary.

    Attributes:
        id: unique id of this checkpoint.
        thread: the thread it belongs to.
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
class StateSnapshot:
    """What :meth:`CompiledGraph.get_state` returns."""

    values: Any
    next: tuple[str, ...]
    interrupts: tuple[Any, ...]
    step: int
    checkpoint_id: str
    parent_id: str | None
    created_at: datetime
    metadata: dict[str, Any]


class Checkpointer(ABC):
    """Where a compiled graph keeps its threads' checkpoints."""

    @abstractmethod
    def put(self, checkpoint: Checkpoint, *, pending: PendingWrite | None = None) -> None:
        """Store ``checkpoint`` as the newest of its thread. ``pending``: the outcome of the
        lone task of the step the checkpoint ends, stored against the checkpoint's parent (as
        :meth:`put_writes` would) in the same transaction: one commit per step instead of
        two."""

    @abstractmethod
    def get(self, thread: str, checkpoint_id: str | None = None) -> Checkpoint | None:
        """The newest checkpoint of ``thread`` (or the one with ``checkpoint_id``), or None."""

    @abstractmethod
    def put_writes(self, thread: str, checkpoint_id: str, write: PendingWrite) -> None:
        """Store a finished task's outcome against the checkpoint its step started from."""

    @abstractmethod
    def get_writes(self, thread: str, checkpoint_id: str) -> dict[str, PendingWrite]:
        """The finished tasks' outcomes stored against ``checkpoint_id``, by task id."""

    @abstractmethod
    def chain(self, thread: str, checkpoint_id: str | None = None) -> list[Checkpoint]:
        """From the nearest ancestor with ``values`` to the checkpoint (newest if None), oldest
        first; empty if there is no such checkpoint."""

    @abstractmethod
    def put_journal(self, thread: str, task_id: str, index: int, value: Any) -> None:
        """Record the ``index``-th journaled result of a task."""

    @abstractmethod
    def get_journal(self, thread: str, task_id: str) -> list[Any]:
        """A task's journaled results, in order."""

    @abstractmethod
    def list(self, thread: str, *, limit: int | None = None) -> list[Checkpoint]:
        """The checkpoints of ``thread``, newest first."""

    @abstractmethod
    def delete_thread(self, thread: str) -> None:
        """Forget every checkpoint of ``thread``."""

    @abstractmethod
    def threads(self) -> list[str]:
        """The threads that have checkpoints."""

    async def aput(self, checkpoint: Checkpoint, *, pending: PendingWrite | None = None) -> None:
        self.put(checkpoint, pending=pending)

    async def aget(self, thread: str, checkpoint_id: str | None = None) -> Checkpoint | None:
        return self.get(thread, checkpoint_id)

    async def aput_writes(self, thread: str, checkpoint_id: str, write: PendingWrite) -> None:
        self.put_writes(thread, checkpoint_id, write)

    async def aget_writes(self, thread: str, checkpoint_id: str) -> dict[str, PendingWrite]:
        return self.get_writes(thread, checkpoint_id)

    async def achain(self, thread: str, checkpoint_id: str | None = None) -> list[Checkpoint]:
        return self.chain(thread, checkpoint_id)

    async def aput_journal(self, thread: str, task_id: str, index: int, value: Any) -> None:
        self.put_journal(thread, task_id, index, value)

    async def aget_journal(self, thread: str, task_id: str) -> list[Any]:
        return self.get_journal(thread, task_id)

    async def athreads(self) -> list[str]:
        return self.threads()

    async def alist(self, thread: str, *, limit: int | None = None) -> list[Checkpoint]:
        return self.list(thread, limit=limit)

    async def adelete_thread(self, thread: str) -> None:
        self.delete_thread(thread)
