"""The sync driver: runs a :class:`Run`'s supersteps in the calling thread.

A lone task runs inline. Several tasks run in the calling thread one after another, and helper
threads join as soon as one of them blocks (see :func:`_run_all`): a step always makes progress,
quick tasks cost no thread hand-over, and a subgraph inside a task never waits for a free worker.
While a step streams its events live, its tasks run on the shared pool and the calling thread
yields the events.
"""

from __future__ import annotations

import functools
import queue
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from .._workers import run_each
from ..graph.nodes import Branch
from .call import MAX_WORKERS, execute_sync, executor
from .executor import run_claimed, split
from .run import Run
from .task import Task

__all__ = ["run_sync"]

_DONE = object()
PATIENCE = 0.001  # seconds a parallel step may go without starting a task before helpers join


def plan_sync(run: Run, branches: tuple[Branch, ...], source: str | None = None) -> None:
    """Evaluate ``branches`` (sync routers) on the state and plan the next step."""
    if branches:
        view = run.router_view()
        for b in branches:
            run.resolve(b, run.call_router(b, view))
    run.plan(source=source)


def _route(run: Run, branches: tuple[Branch, ...] | None) -> None:
    if branches is None:  # resuming or paused: nothing to plan
        return
    try:
        plan_sync(run, branches)
    except BaseException:
        run.store_deferred()  # a router failed: the finished task's outcome still counts
        raise
    cp = run.take_checkpoint()
    if cp is not None:
        run.checkpointer.put(cp, lease=run.lease)
        run.checkpoint_stored(cp)


def _run_all(run: Run, tasks: list[Task]) -> None:
    """Run ``tasks`` concurrently; return when all have finished.

    The calling thread runs them one after another; when one blocks (no task started for
    ``PATIENCE`` seconds while others wait), helper threads take the rest, doubling while the
    step stays stuck, up to ``MAX_WORKERS`` (see :func:`graphflow._workers.run_all`). Quick
    tasks cost no thread hand-over at all (threads would only take turns on the GIL); tasks
    that block, as model and tool calls do, run concurrently within a few milliseconds.
    """
    errors = run_each(functools.partial(execute_sync, run), tasks, helpers=MAX_WORKERS,
                      patience=PATIENCE)
    for i, exc in errors.items():  # never lose a task's end, whatever it raised
        tasks[i].error = exc


def _run_split(run: Run, tasks: list[Task], far: list[Task]) -> None:
    """Run ``tasks`` here and on the pool while the run's executor runs ``far``."""
    if not tasks:
        run_claimed(run, far)
        return
    handed = executor().submit(run_claimed, run, far)
    _run_all(run, tasks)
    handed.result()


def _run_all_live(run: Run, tasks: list[Task], far: list[Task] | tuple[()] = ()
                  ) -> Iterator[Any]:
    """Run ``tasks`` on the pool (and ``far`` on the run's executor) while yielding their
    stream events as they happen."""
    events: queue.SimpleQueue[Any] = queue.SimpleQueue()
    pending = deque(tasks)

    def work() -> None:
        while True:
            try:
                task = pending.popleft()
            except IndexError:
                return
            try:
                execute_sync(run, task)
            except BaseException as exc:
                task.error = exc
            finally:
                events.put(_DONE)

    def handed() -> None:
        try:
            run_claimed(run, far)  # type: ignore[arg-type]
        finally:
            events.put(_DONE)

    run.sink = events.put
    try:
        pool = executor()
        for _ in range(min(len(tasks), MAX_WORKERS // 2)):
            pool.submit(work)
        left = len(tasks)
        if far:
            pool.submit(handed)
            left += 1
        while left:
            item = events.get()
            if item is _DONE:
                left -= 1
            else:
                yield item
    finally:
        run.sink = None


def run_sync(run: Run) -> Iterator[Any]:
    """Drive ``run`` to the end, yielding stream events (none when no mode was asked for).

    A run with a thread holds the thread's lease from its start to its end (however it ends).
    """
    for pause in run.lease_waits():
        time.sleep(pause)
    run.started()
    try:
        yield from _drive(run)
    except BaseException as exc:
        run.ended(exc)
        raise
    finally:
        run.ended(None)
        run.release()


def _drive(run: Run) -> Iterator[Any]:
    _route(run, run.begin())
    if run.events:
        yield from run.flush()
    while run.tasks and not run.paused:
        tasks = run.next_step()
        if run.paused:  # a static breakpoint before this step
            if run.checkpointer is not None:
                run.checkpointer.put_writes(run.thread or "", run.checkpoint_id or "",
                                            run.breakpoint_write(), ns=run.ns)
            break
        far: list[Task] | tuple[()] = ()
        if run.executor is not None:  # the tasks it claims run elsewhere
            tasks, far = split(run, tasks)
        if len(tasks) == 1 and not far and not run.live_inline:
            execute_sync(run, tasks[0])
        elif run.streaming:
            yield from _run_all_live(run, tasks, far)
        elif far:
            _run_split(run, tasks, far)
        elif tasks:
            _run_all(run, tasks)
        if run.events:  # the tasks' events come out even when the step then fails
            yield from run.flush()
        try:
            branches = run.after_step()
        except BaseException:
            run.store_deferred()
            raise
        _route(run, branches)
        if run.events:
            yield from run.flush()
    if run.events:  # a breakpoint's or an interrupt's event
        yield from run.flush()
