"""The executor seam: where the tasks of a step run.

By default a step's tasks run in the process that drives the run: a lone task inline, several on
the shared thread pool, async ones on the event loop. A graph given an :class:`Executor`
(``CompiledGraph.with_executor``) hands it the tasks it *claims* (by node) and runs the others
as usual, at the same time. The executor runs its tasks wherever it likes (a Ray cluster,
another pool) and brings each one back as an outcome recorded on the task — ``writes``,
``update``, ``goto``, ``error`` or ``interrupts``, as :func:`graphflow.engine.call.execute_sync`
records them — calling ``run.task_finished(task)`` as each one finishes (from any thread).

Everything else stays the engine's, unchanged: which tasks are due, storing each finished task's
outcome as a pending write the moment it finishes (``task_finished``), merging the step's writes
in the deterministic order (by node, then ``Send`` index), checkpoints, pauses and errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..graph.nodes import NodeSpec
    from .run import Run
    from .task import Task

__all__ = ["Executor", "run_claimed", "split"]


@runtime_checkable
class Executor(Protocol):
    """Runs the tasks of the nodes it claims somewhere other than the driving process."""

    def claims(self, spec: NodeSpec) -> bool:
        """Whether this executor runs the tasks of node ``spec`` (else they run locally)."""
        ...

    def run(self, run: Run, tasks: list[Task]) -> None:
        """Run ``tasks`` (all of one step, in merge order) and return once all have finished.

        Record each task's outcome on it and call ``run.task_finished(task)`` as it finishes.
        Called from a thread of the engine's pool (or the driving thread); it may block.
        Raising means the executor itself failed (a lost cluster): see :func:`run_claimed`.
        """
        ...


def split(run: Run, tasks: list[Task]) -> tuple[list[Task], list[Task]]:
    """``tasks`` as (those that run locally, those the run's executor claims), in order."""
    claims = run.executor.claims
    near: list[Task] = []
    far: list[Task] = []
    for t in tasks:
        (far if claims(t.spec) else near).append(t)
    return near, far


def run_claimed(run: Run, tasks: list[Task]) -> None:
    """Hand ``tasks`` to the run's executor. When the executor itself fails, its exception
    becomes the error of each of these tasks that has none, so the step fails with it; the
    outcomes stored before (pending writes) are kept, and a resume runs only the others."""
    if run.announce:
        for t in tasks:
            run.task_started(t)
    try:
        run.executor.run(run, tasks)
    except BaseException as exc:
        for t in tasks:
            if t.error is None:
                t.error = exc
