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

__all__ = ["ajournaled", "journaled", "next_slot", "slot_key"]

T = TypeVar("T")
_MISS = object()


# The journaled call now running, per task: (task, its slot's key, the slot's next inner index).
_ENCLOSING: ContextVar[tuple[Task, str, list[int]] | None] = ContextVar(
    "graphflow_journal_scope", default=None)


def next_slot(run: Run, task: Task) -> tuple[str, int]:
    """The journal key and index the task's next journaled call will take (nothing claimed)."""
    enclosing = _ENCLOSING.get()
    if enclosing is not None and enclosing[0] is task:
        return enclosing[1], enclosing[2][0]
    return run.id_of(task), task.n_steps


def _lookup(run: Run, task: Task, name: str) -> tuple[str, int, Any]:
    """Claim the task's next journal slot (or the enclosing call's next inner slot); return its
    key, index and recorded entry (or miss)."""
    enclosing = _ENCLOSING.get()
    if enclosing is not None and enclosing[0] is task:
        _, key, counter = enclosing
        index = counter[0]
        counter[0] += 1
    else:
        index = task.n_steps
        task.n_steps += 1
        key = run.id_of(task)
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
    return key, index, entry


def slot_key() -> str:
    """The key of the journal slot whose call is running (``<task id>/<slot>``): a name unique
    to this call of this task, the same when the task runs again."""
    enclosing = _ENCLOSING.get()
    if enclosing is None:
        raise GraphflowError("slot_key() is only available inside a journaled call")
    return enclosing[1]


def _replayed(run: Run, entry: dict[str, Any], on_replay: Callable[[Any], None] | None) -> Any:
    """An entry's value; ``on_replay(value)`` first when no checkpoint or earlier part of this
    run has accounted for it: it was recorded by another run in the step this run resumes
    (that run crashed or failed before the step's checkpoint was written)."""
    value = entry["value"]
    if (on_replay is not None and entry.get("run") != run.run_id
            and entry.get("at") == run.checkpoint_id):
        on_replay(value)
    return value


def _record(run: Run, key: str, index: int, name: str, value: Any) -> None:
    run.record(key, index, {"name": name, "value": value, "run": run.run_id,
                            "at": run.checkpoint_id})


def journaled(run: Run, task: Task, name: str, call: Callable[[], T],
              on_replay: Callable[[T], None] | None = None) -> T:
    """``call()`` once per task slot; its recorded result on later runs of the task.

    ``on_replay`` is called with a recorded result the run's totals have not seen yet (see
    :func:`_replayed`): model calls use it to count tokens paid by a run that crashed.
    """
    key, index, entry = _lookup(run, task, name)
    if entry is not _MISS:
        return _replayed(run, entry, on_replay)  # type: ignore[no-any-return]
    token = _ENCLOSING.set((task, f"{key}/{index}", [0]))
    try:
        value = call()
    finally:
        _ENCLOSING.reset(token)
    _record(run, key, index, name, value)
    return value


async def ajournaled(run: Run, task: Task, name: str, call: Callable[[], Awaitable[T]],
                     on_replay: Callable[[T], None] | None = None) -> T:
    """Async :func:`journaled`."""
    key, index, entry = _lookup(run, task, name)
    if entry is not _MISS:
        return _replayed(run, entry, on_replay)  # type: ignore[no-any-return]
    token = _ENCLOSING.set((task, f"{key}/{index}", [0]))
    try:
        value = await call()
    finally:
        _ENCLOSING.reset(token)
    _record(run, key, index, name, value)
    return value
