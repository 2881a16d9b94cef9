"""Pausing a run from inside a node: :func:`interrupt` and :class:`Interrupt`.

``interrupt(value)`` raises :class:`GraphInterrupt`; the engine stops the run at that step,
keeps the finished tasks' writes, and records the interrupt. ``invoke(Command(resume=v), ...)``
journals ``v`` under the interrupted task's id and runs the task again: this time the same
``interrupt(...)`` call returns ``v``. Several interrupts in one task resume in order.
"""

from __future__ import annotations

import contextvars
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import GraphflowError

if TYPE_CHECKING:
    from .run import Run
    from .task import Task

__all__ = ["GraphInterrupt", "Interrupt", "current", "interrupt"]

SCOPE: contextvars.ContextVar[tuple[Run, Task]] = contextvars.ContextVar("graphflow_task")


@dataclass(frozen=True, slots=True)
class Interrupt:
    """A pause requested by a node, waiting for ``Command(resume=...)``.

    Attributes:
        id: stable id; resume several pending interrupts with ``{id: value}``.
        value: what the node passed to ``interrupt(...)`` (the question for the human).
        node: the node that asked.
        ns: where the answer is journaled: the namespace of the task inside its thread
            (``""`` for the thread's own graph, a subgraph run's path otherwise).
        task: the id of the task that asked.
        index: which ``interrupt`` call of that task this is (0 for the first).
    """

    id: str
    value: Any
    node: str
    ns: str = ""
    task: str = ""
    index: int = 0


class GraphInterrupt(BaseException):
    """Raised by :func:`interrupt` to unwind a node; the engine turns it into a pause.

    A ``BaseException`` so that ``except Exception`` in user code and retry policies never
    swallow it.
    """

    def __init__(self, interrupts: list[Interrupt]) -> None:
        super().__init__(interrupts)
        self.interrupts = interrupts


def current() -> tuple[Run, Task]:
    """The run and task executing in this context (raises outside a node)."""
    scope = SCOPE.get(None)
    if scope is None:
        raise GraphflowError("interrupt() and ctx.step() only work inside a running graph node")
    return scope


def interrupt_id(thread: str, ns: str, task_id: str, index: int) -> str:
    return hashlib.sha1(f"{thread}\x00{ns}\x00{task_id}\x00{index}".encode()).hexdigest()[:16]


def interrupt(value: Any) -> Any:
    """Pause the run and ask for a value; returns that value once the run is resumed.

    Resume with ``app.invoke(Command(resume=answer), thread=...)``. The node runs again from
    its start: keep work done before the call in ``ctx.step(...)`` so it is not repeated.
    Requires a checkpointer and a thread.
    """
    run, task = current()
    index = task.n_interrupts
    task.n_interrupts += 1
    task_id = run.id_of(task)
    answers = run.journal(task_id + "#resume")
    if index < len(answers):
        return answers[index]
    if run.checkpointer is None:
        raise GraphflowError(
            f"node {task.name!r} called interrupt() in a run without a checkpointer and "
            f"thread: compile(checkpointer=...) and invoke(..., thread=...) to pause and resume")
    ns = run.ns
    raise GraphInterrupt([Interrupt(interrupt_id(run.thread or "", ns, task_id, index), value,
                                    task.name, ns, task_id, index)])
