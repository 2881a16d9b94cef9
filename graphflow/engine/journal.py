"""The step journal: results recorded per task, replayed in order when the task runs again.

``ctx.step(...)`` and model calls made through :mod:`graphflow.models` share it, so a node that
runs again after a crash, an error, a retry or an interrupt gets back what it already paid for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import GraphflowError

if TYPE_CHECKING:
    from .run import Run
    from .task import Task

__all__ = ["ajournaled", "journaled"]

T = TypeVar("T")
_MISS = object()


def _lookup(run: Run, task: Task, name: str) -> tuple[str, int, Any]:
    """Claim the task's next journal slot; return its key, index and recorded value (or miss)."""
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
    value = call()
    run.record(key, index, {"name": name, "value": value})
    return value


async def ajournaled(run: Run, task: Task, name: str, call: Callable[[], Awaitable[T]]) -> T:
    """Async :func:`journaled`."""
    key, index, value = _lookup(run, task, name)
    if value is not _MISS:
        return value  # type: ignore[no-any-return]
    value = await call()
    run.record(key, index, {"name": name, "value": value})
    return value
