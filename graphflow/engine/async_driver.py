"""The async driver: runs a :class:`Run`'s supersteps on the running event loop.

A lone task is awaited inline. Async tasks of a step run as asyncio tasks; the step's sync tasks
run together on the shared thread pool, so blocking code never stalls the loop.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ..graph.nodes import Branch
from .call import execute_async, executor
from .executor import run_claimed, split
from .run import Run
from .sync_driver import _run_all
from .task import Task

__all__ = ["run_async"]

_DONE = object()


async def _route(run: Run, branches: tuple[Branch, ...] | None) -> None:
    if branches is None:  # resuming: the due tasks were loaded, not planned
        return
    try:
        await _plan(run, branches)
    except BaseException:
        await run.astore_deferred()  # a router failed: the finished task's outcome still counts
        raise
    cp = run.take_checkpoint()
    if cp is not None:
        await run.checkpointer.aput(cp, lease=run.lease)
        run.checkpoint_stored(cp)


async def _plan(run: Run, branches: tuple[Branch, ...]) -> None:
    if branches:
        view = run.router_view()
        for b in branches:
            result = run.call_router(b, view)
            if inspect.isawaitable(result):
                try:
                    result = await result
                except Exception as exc:
                    run.router_failed(b, exc)
                    raise
            run.resolve(b, result)
    run.plan()


def _jobs(run: Run, tasks: list[Task], far: list[Task] | tuple[()] = ()
          ) -> list[Callable[[], Awaitable[None]]]:
    """The step as awaitables: one per async task, one for all sync tasks together, one for
    the tasks ``far`` that the run's executor claims."""
    loop = asyncio.get_running_loop()
    sync = [t for t in tasks if not (t.spec.is_async or t.spec.subgraph is not None)]
    jobs: list[Callable[[], Awaitable[None]]] = [
        (lambda t=t: execute_async(run, t)) for t in tasks
        if t.spec.is_async or t.spec.subgraph is not None
    ]
    if sync:
        jobs.append(lambda: loop.run_in_executor(executor(), _run_all, run, sync))
    if far:
        jobs.append(lambda: loop.run_in_executor(executor(), run_claimed, run, far))
    return jobs


async def _run_all_live(run: Run, tasks: list[Task], far: list[Task] | tuple[()] = ()
                        ) -> AsyncIterator[Any]:
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[Any] = asyncio.Queue()
    loop_thread = threading.get_ident()

    def sink(item: Any) -> None:
        if threading.get_ident() == loop_thread:
            events.put_nowait(item)
        else:
            loop.call_soon_threadsafe(events.put_nowait, item)

    async def job(fn: Callable[[], Awaitable[None]]) -> None:
        try:
            await fn()
        finally:
            sink(_DONE)

    jobs = _jobs(run, tasks, far)
    run.sink = sink
    running = [asyncio.ensure_future(job(fn)) for fn in jobs]
    try:
        left = len(running)
        while left:
            item = await events.get()
            if item is _DONE:
                left -= 1
            else:
                yield item
        await asyncio.gather(*running)
    finally:
        run.sink = None
        for fut in running:
            fut.cancel()


async def run_async(run: Run) -> AsyncIterator[Any]:
    """Drive ``run`` to the end, yielding stream events (none when no mode was asked for).

    A run with a thread holds the thread's lease from its start to its end (however it ends).
    """
    for pause in run.lease_waits():
        await asyncio.sleep(pause)
    run.started()
    try:
        async for event in _drive(run):
            yield event
    except BaseException as exc:
        run.ended(exc)
        raise
    finally:
        run.ended(None)
        run.release()


async def _drive(run: Run) -> AsyncIterator[Any]:
    await _route(run, run.begin())
    for event in run.flush():
        yield event
    while run.tasks and not run.paused:
        tasks = run.next_step()
        if run.paused:  # a static breakpoint before this step
            if run.checkpointer is not None:
                await run.checkpointer.aput_writes(run.thread or "", run.checkpoint_id or "",
                                                   run.breakpoint_write(), ns=run.ns)
            break
        far: list[Task] | tuple[()] = ()
        if run.executor is not None:  # the tasks it claims run elsewhere
            tasks, far = split(run, tasks)
        if len(tasks) == 1 and not far and not run.live_inline:
            task = tasks[0]
            if task.spec.is_async or task.spec.subgraph is not None:
                await execute_async(run, task)
            else:
                await asyncio.get_running_loop().run_in_executor(executor(), _run_all, run,
                                                                 tasks)
        elif run.streaming:
            async for event in _run_all_live(run, tasks, far):
                yield event
        elif tasks or far:
            await asyncio.gather(*(fn() for fn in _jobs(run, tasks, far)))
        # the tasks' events come out even when the step then fails
        for event in run.flush() if run.events else ():
            yield event
        try:
            branches = run.after_step()
        except BaseException:
            await run.astore_deferred()
            raise
        if branches or run.checkpointer is not None:
            await _route(run, branches)
        elif branches is not None:
            run.plan()
        for event in run.flush() if run.events else ():
            yield event
    for event in run.flush():  # a breakpoint's or an interrupt's event
        yield event
