"""Calling one node: retries (tenacity), per-attempt timeouts, error wrapping — sync and async.

The async functions mirror the sync ones line for line; what a call *means* (which input, which
context, how output becomes writes) is decided once, in :class:`Run` and :func:`normalize`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .. import tracing
from ..errors import NodeError, NodeTimeoutError, RunCancelledError, TokenBudgetExceeded
from ..types import RetryPolicy
from .context import RunContext
from .ids import escape_name
from .interrupts import SCOPE, GraphInterrupt
from .task import normalize

if TYPE_CHECKING:
    from .run import Run
    from .task import Task

__all__ = ["execute_async", "execute_sync", "executor"]

MAX_WORKERS = 64
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def executor() -> ThreadPoolExecutor:
    """The shared pool that runs sync tasks of parallel steps (created on first use)."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="graphflow")
    return _pool


@functools.lru_cache(maxsize=256)
def _retry_kwargs(policy: RetryPolicy) -> dict[str, Any]:
    import tenacity

    wait = tenacity.wait_exponential(multiplier=policy.initial_interval,
                                     exp_base=policy.backoff_factor, max=policy.max_interval)
    if policy.jitter:
        wait = wait + tenacity.wait_random(0, 1)
    return {
        "stop": tenacity.stop_after_attempt(policy.max_attempts),
        "wait": wait,
        "retry": tenacity.retry_if_exception(policy.should_retry),
        "reraise": True,
    }


_CACHED = object()  # what a node "returned" when its outcome came from the graph's cache


def _record(run: Run, task: Task, out: Any) -> None:
    """Turn what a node returned into the task's writes (a bad return becomes its error)."""
    if type(out) is dict:
        task.writes = task.update = out
        return
    if out is _CACHED:
        return
    try:
        normalize(task, out)
        if task.goto is not None:
            run.check_parent_goto(task)
    except Exception as exc:
        task.error = exc


def annotate(exc: BaseException, where: str, run: Run, node: str) -> BaseException:
    """``exc``, raised by user code in ``node``, with a note saying where (``where``: "node
    'x'" or "router 'r' on node 'x'"), superstep and thread, and the attributes
    ``graphflow_node``, ``graphflow_step``, ``graphflow_thread`` of where it was raised. Passing
    up through subgraph nodes, it gains a note per level ("through node 'team' ...")."""
    thread = f", thread {run.thread!r}" if run.thread is not None else ""
    if getattr(exc, "graphflow_node", None) is None:
        exc.add_note(f"raised in {where}, superstep {run.step}{thread} (graphflow)")
        with contextlib.suppress(AttributeError, TypeError):
            exc.graphflow_node = node  # type: ignore[attr-defined]
            exc.graphflow_step = run.step  # type: ignore[attr-defined]
            exc.graphflow_thread = run.thread  # type: ignore[attr-defined]
        return exc
    note = f"through {where} of graph {run.graph.name!r}, superstep {run.step}{thread}"
    if note not in getattr(exc, "__notes__", ()):
        exc.add_note(note)
    return exc


def _node_error(run: Run, task: Task, exc: BaseException) -> BaseException:
    """What a node's failure raises: what the node's call raised, as itself (``except
    KeyError`` works), annotated with where; a :class:`NodeError` (the original as its cause)
    when graphflow stopped the call from around it (its timeout)."""
    if isinstance(exc, TokenBudgetExceeded | RunCancelledError):  # the run's, not the node's
        return exc
    if isinstance(exc, NodeTimeoutError) and exc.node == task.name:
        err = NodeError(task.name, f"node {task.name!r} failed: {type(exc).__name__}: {exc}")
        err.__cause__ = exc
        return err
    return annotate(exc, f"node {task.name!r}", run, task.name)


def _cache_lookup(run: Run, task: Task) -> str | None:
    """Restore ``task``'s outcome from the graph's cache and return None; or return the cache
    key under which to store it once it has run (a miss)."""
    from ..checkpoint.serde import loads_bytes

    policy = task.spec.cache_policy
    assert policy is not None
    try:
        key = policy.key_func(run.node_input(task))
    except Exception as exc:
        raise NodeError(task.name, f"node {task.name!r}: its cache_policy's key_func failed "
                                   f"on its input: {type(exc).__name__}: {exc}; give "
                                   f"CachePolicy a key_func that can read it") from exc
    key = key.hex() if isinstance(key, bytes) else str(key)
    found = run.graph.cache.get(_cache_ns(run, task), key)
    if found is None:
        return key
    task.writes, task.update, task.goto = loads_bytes(found)
    return None


def _cache_store(run: Run, task: Task, key: str) -> None:
    from ..checkpoint.serde import dumps_bytes

    if task.error is None:
        outcome = (task.writes, task.update, task.goto)
        run.graph.cache.set(_cache_ns(run, task), key, dumps_bytes(outcome),
                            task.spec.cache_policy.ttl)  # type: ignore[union-attr]


def _cache_ns(run: Run, task: Task) -> str:
    return f"{escape_name(run.graph.name)}/{escape_name(task.name)}"


# -- sync ------------------------------------------------------------------------------------------

def _once_sync(run: Run, task: Task, ctx: RunContext) -> Any:
    spec = task.spec
    task.n_steps = task.n_interrupts = 0
    if spec.subgraph is not None:
        return spec.subgraph._call_as_node(run, task, ctx)
    arg = run.node_input(task)
    return spec.fn(arg) if spec.inject is None else spec.inject.call(spec.fn, arg, ctx)


def _attempt_sync(run: Run, task: Task, ctx: RunContext) -> Any:
    timeout = task.spec.timeout
    if timeout is None:
        return _once_sync(run, task, ctx)
    box: list[Any] = []
    done = threading.Event()

    def target() -> None:
        try:
            box.append((True, _once_sync(run, task, ctx)))
        except BaseException as exc:
            box.append((False, exc))
        finally:
            done.set()

    context = contextvars.copy_context()  # interrupt() and ctx.step() work in the thread too
    threading.Thread(target=context.run, args=(target,), name=f"graphflow-{task.name}",
                     daemon=True).start()
    if not done.wait(timeout):
        raise NodeTimeoutError(task.name, timeout)  # the thread cannot be killed; it is abandoned
    ok, value = box[0]
    if ok:
        return value
    raise value


def call_sync(run: Run, task: Task) -> Any:
    """Run a node's body (with its retry policy and timeout) and return what it returned."""
    spec = task.spec
    ctx = run.make_ctx(task)
    if spec.retry is None:
        return _attempt_sync(run, task, ctx)
    import tenacity

    for attempt in tenacity.Retrying(**_retry_kwargs(spec.retry)):
        with attempt:
            ctx.attempt = attempt.retry_state.attempt_number
            return _attempt_sync(run, task, ctx)
    raise AssertionError("unreachable")  # pragma: no cover


def execute_sync(run: Run, task: Task) -> None:
    """Run ``task`` to completion; its outcome (writes or error) is recorded on it."""
    spec = task.spec
    token = SCOPE.set((run, task))
    if run.announce:  # from the task itself, so it reaches a live stream before the result
        run.task_started(task)
    span = tracing.node_started(run, task) if run.spans else None
    try:
        if spec.plain and not spec.is_async:
            out = spec.fn(run.node_input(task))
        elif spec.cache_policy is not None and run.graph.cache is not None:
            key = _cache_lookup(run, task)
            if key is not None:
                _record(run, task, call_sync(run, task))
                _cache_store(run, task, key)
            out = _CACHED
        else:
            out = call_sync(run, task)
    except GraphInterrupt as gi:
        task.interrupts = gi.interrupts
    except Exception as exc:
        task.error = _node_error(run, task, exc)
    else:
        _record(run, task, out)
    finally:
        SCOPE.reset(token)
        if span is not None:
            tracing.node_ended(span, task)
    run.task_finished(task)


# -- async -----------------------------------------------------------------------------------------

async def _once_async(run: Run, task: Task, ctx: RunContext) -> Any:
    spec = task.spec
    task.n_steps = task.n_interrupts = 0
    if spec.subgraph is not None:
        return await spec.subgraph._acall_as_node(run, task, ctx)
    arg = run.node_input(task)
    inject = spec.inject
    if spec.is_async:
        return await (spec.fn(arg) if inject is None else inject.call(spec.fn, arg, ctx))
    loop = asyncio.get_running_loop()
    run_in_context = contextvars.copy_context().run
    if inject is not None:
        return await loop.run_in_executor(executor(), run_in_context, inject.call, spec.fn, arg,
                                          ctx)
    return await loop.run_in_executor(executor(), run_in_context, spec.fn, arg)


async def _attempt_async(run: Run, task: Task, ctx: RunContext) -> Any:
    timeout = task.spec.timeout
    if timeout is None:
        return await _once_async(run, task, ctx)
    cm = asyncio.timeout(timeout)
    try:
        async with cm:
            return await _once_async(run, task, ctx)
    except TimeoutError:
        if cm.expired():
            raise NodeTimeoutError(task.name, timeout) from None
        raise


async def call_async(run: Run, task: Task) -> Any:
    """Async twin of :func:`call_sync`."""
    spec = task.spec
    ctx = run.make_ctx(task)
    if spec.retry is None:
        return await _attempt_async(run, task, ctx)
    import tenacity

    async for attempt in tenacity.AsyncRetrying(**_retry_kwargs(spec.retry)):
        with attempt:
            ctx.attempt = attempt.retry_state.attempt_number
            return await _attempt_async(run, task, ctx)
    raise AssertionError("unreachable")  # pragma: no cover


async def execute_async(run: Run, task: Task) -> None:
    """Async twin of :func:`execute_sync`."""
    spec = task.spec
    token = SCOPE.set((run, task))
    if run.announce:  # from the task itself, so it reaches a live stream before the result
        run.task_started(task)
    span = tracing.node_started(run, task) if run.spans else None
    try:
        if spec.plain and spec.is_async:
            out = await spec.fn(run.node_input(task))
        elif spec.cache_policy is not None and run.graph.cache is not None:
            key = _cache_lookup(run, task)
            if key is not None:
                _record(run, task, await call_async(run, task))
                _cache_store(run, task, key)
            out = _CACHED
        else:
            out = await call_async(run, task)
    except GraphInterrupt as gi:
        task.interrupts = gi.interrupts
    except Exception as exc:
        task.error = _node_error(run, task, exc)
    else:
        _record(run, task, out)
    finally:
        SCOPE.reset(token)
        if span is not None:
            tracing.node_ended(span, task)
    run.task_finished(task)
