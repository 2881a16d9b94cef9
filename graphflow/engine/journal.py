"""The step journal: results recorded per task, replayed in order when the task runs again.

``ctx.step(...)`` and model calls made through :mod:`graphflow.models` share it, so a node that
runs again after a crash, an error, a retry or an interrupt gets back what it already paid for.

Calls nest: a model call (or ``ctx.step``) made *inside* a step's function is journaled under
that step's own slot (``<task id>/<slot>``), not in the task's sequence. So a finished step
replays as one entry, and a step that failed or paused after an inner call re-runs its function
with the inner call's result replayed; the task's slots keep their order either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import GraphflowError

if TYPE_CHECKING:
    from .run import Run
    from .task import Task

__all__ = ["ajournaled", "journaled"]

T = TypeVar("T")
_MISS = object()


# The journaled call now running, per task: (task, its slot's key, the slot's next inner index).
_ENCLOSING: ContextVar[tuple[Task, str, list[int]] | None] = ContextVar(
    "graphflow_journal_scope", default=None)


def _lookup(run: Run, task: Task, name: str) -> tuple[str, int, Any]:
    """Claim the task's next journal slot (or the enclosing call's next inner slot); return its
    key, index and recorded value (or miss)."""
    enclosing = _ENCLOSING.get()
    if enclosing is not None and enclosing[0] is task:
        _, key, counter = enclosing
        index = counter[0]
        counter[0] += 1
    else:
        index = task.n_steps
        task.n_steps += 1
        key = run.task_id(run.step, task.name, task.index)
    done = run.journal(key)
    if index >= len(done):
        return key, index, _MISS
    entry = done[index]
    if not isinstance(entry, dict) or entry.get("name") != name:
        found = entry.get("name") if isinstance(entry, dict) else entry
        raise GraphflowError(
            f"node {task.name!r}: journaled call #{index} is {name!r} but this task's journal "
            f"recorded {found!r}; a node's steps and model calls must run in the same order "
            f"each time")
    return key, index, entry["value"]


def journaled(run: Run, task: Task, name: str, call: Callable[[], T]) -> T:
    """``call()`` once per task slot; its recorded result on later runs of the task."""
    key, index, value = _lookup(run, task, name)
    if value is not _MISS:
        return value  # type: ignore[no-any-return]
    token = _ENCLOSING.set((task, f"{key}/{index}", [0]))
    try:
        value = call()
    finally:
        _ENCLOSING.reset(token)
    run.record(key, index, {"name": name, "value": value})
    return value


async def ajournaled(run: Run, task: Task, name: str, call: Callable[[], Awaitable[T]]) -> T:
    """Async :func:`journaled`."""
    key, index, value = _lookup(run, task, name)
    if value is not _MISS:
        return value  # type: ignore[no-any-return]
    token = _ENCLOSING.set((task, f"{key}/{index}", [0]))
    try:
        value = await call()
    finally:
        _ENCLOSING.reset(token)
    run.record(key, index, {"name": name, "value": value})
    return value
