"""Memory writes that are safe under crash and resume.

Inside a node (or a tool a ToolNode runs) a write is a journaled call: its result is recorded in
the task's step journal, and a task that runs again after a crash or an interrupt gets the
recorded result back instead of writing again. The ids a write gives its records are derived
from the journal slot it takes (thread, subgraph namespace, task and the call's position: the
engine's ``idempotency_key``), so even a write that reached the database just before a crash,
and so was not journaled yet, is repeated as an upsert of the same ids: never a duplicate.
Outside a graph, writes run directly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from graphflow.engine.ids import idempotency_key
from graphflow.engine.interrupts import SCOPE
from graphflow.engine.journal import ajournaled, journaled, next_slot

__all__ = ["adurable", "durable", "slot_ids"]

T = TypeVar("T")


def _slot(run: Any, task: Any) -> str:
    """A key for the journal slot the next journaled call of ``task`` takes: the same when the
    task runs that call again (retry, resume, crash recovery), different for any other call,
    thread, subgraph or fork. A run without a thread cannot be resumed: its own random id
    stands in for the thread, so two such runs never share ids."""
    key, index = next_slot(run, task)
    return idempotency_key(run.thread or f"run:{run.run_id}", run.ns, key, index)


def durable(name: str, write: Callable[[str | None], T]) -> T:
    """``write(slot)`` once per task slot (``slot``: see :func:`_slot`; None outside a node)."""
    scope = SCOPE.get(None)
    if scope is None:
        return write(None)
    run, task = scope
    slot = _slot(run, task)
    return journaled(run, task, name, lambda: write(slot))


async def adurable(name: str, write: Callable[[str | None], Awaitable[T]]) -> T:
    """Async :func:`durable`."""
    scope = SCOPE.get(None)
    if scope is None:
        return await write(None)
    run, task = scope
    slot = _slot(run, task)
    return await ajournaled(run, task, name, lambda: write(slot))


def slot_ids(slot: str, n: int, salt: str = "") -> list[str]:
    """``n`` ids for the records of one write, the same each time the slot runs.

    Built from a JSON array (structural: no separator a thread or node name could contain).
    """
    return [hashlib.sha256(json.dumps([slot, salt, i]).encode()).hexdigest()[:32]
            for i in range(n)]


def content_id(text: str, namespace: str = "") -> str:
    """An id derived from a text (storing the same text twice upserts one record)."""
    return hashlib.sha256(json.dumps([namespace, text]).encode()).hexdigest()[:32]
