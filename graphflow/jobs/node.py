"""Graph nodes that run long jobs and wait on sensors: :class:`JobNode`, :class:`SensorNode`,
:class:`AgentNode` (a sync agent), and :func:`cancel`.

A job node journals the job's creation (``ctx.step``, with the call's
``ctx.idempotency_key()``), so a run that resumes after a crash re-attaches to the same job and
never submits it twice. It then polls ``get`` with backoff; between polls it pauses the run with
a durable wait (the thread is checkpointed and a scheduler — ``graphflow worker`` — wakes it for
the next poll), or sleeps in the node for polls shorter than ``inline``. The poll count and the
next poll's time are journaled, so a woken (or resumed) node polls once and pauses again. When
the job succeeds its outputs go into the state; a failed job fails the node. A timeout, too many
failed polls, or :func:`cancel` delete the job (``delete``) and fail the node.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..checkpoint.durable import MISSING
from ..engine.waits import CANCEL_SIGNAL, pause, poll_wait_id
from ..errors import GraphflowError
from .protocol import (
    SUCCEEDED,
    JobCancelledError,
    JobError,
    JobFailedError,
    JobStatus,
    JobTimeoutError,
    get_agent,
    to_status,
)

if TYPE_CHECKING:
    from ..engine.compiled import CompiledGraph
    from ..engine.context import RunContext

__all__ = ["AgentNode", "JobNode", "Poll", "SensorNode", "cancel"]


@dataclass(frozen=True, slots=True)
class Poll:
    """When to poll: ``interval`` seconds after the start, then each pause ``backoff`` times
    the last, at most ``max_interval``."""

    interval: float = 1.0
    backoff: float = 2.0
    max_interval: float = 60.0

    def __post_init__(self) -> None:
        if self.interval <= 0 or self.backoff < 1 or self.max_interval < self.interval:
            raise ValueError(f"{self}: need interval > 0, backoff >= 1, "
                             f"max_interval >= interval")

    def delay(self, attempt: int) -> float:
        """The pause before poll number ``attempt`` (1 for the first)."""
        return min(self.interval * self.backoff ** max(attempt - 1, 0), self.max_interval)


def _poll_policy(poll: Poll | float) -> Poll:
    if isinstance(poll, Poll):
        return poll
    return Poll(float(poll), 1.0, float(poll))


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(...)``; an ``async def`` agent method is run to completion here (a job node is a
    sync node: it runs in a worker thread under the async driver)."""
    out = fn(*args, **kwargs)
    if inspect.isawaitable(out):
        from ..engine.compiled import _run_blocking

        async def wait() -> Any:
            return await out

        return _run_blocking(wait)
    return out


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)


def _resolve(agent: Any) -> tuple[Any, str]:
    if isinstance(agent, str):
        return get_agent(agent), agent
    return agent, getattr(agent, "task_type", None) or type(agent).__name__


class _Node:
    """What job, sensor and agent nodes share: inputs from the state, outputs into it."""

    def __init__(self, agent: Any, inputs: Callable[[Any], Any] | list[str] | None,
                 output: str | Callable[[Any], dict[str, Any]] | None) -> None:
        self.agent, self.task_type = _resolve(agent)
        self.inputs = inputs
        self.output = output
        meta = getattr(self.agent, "metadata_type", None)
        if isinstance(meta, type):  # a Flyte-style handle class: allowed in the journal
            from ..checkpoint.serde import register_type

            register_type(meta)

    def _inputs(self, state: Any) -> Any:
        if callable(self.inputs):
            return self.inputs(state)
        values = state if isinstance(state, Mapping) else vars(state)
        if self.inputs is None:
            return dict(values)
        return {k: values[k] for k in self.inputs}

    def _update(self, node: str, outputs: Any) -> dict[str, Any]:
        if callable(self.output):
            return self.output(outputs)
        if isinstance(self.output, str):
            return {self.output: outputs}
        if outputs is None:
            return {}
        if not isinstance(outputs, Mapping):
            raise JobError(f"node {node!r}: the job's outputs are {type(outputs).__name__}, "
                           f"not a dict of state keys; pass output='key' (or a function)")
        return dict(outputs)


class JobNode(_Node):
    """A node that runs a job through an async agent (or its registered task type) and puts
    its outputs into the state.

    Args:
        agent: an agent with ``create``/``get``/``delete``, or a registered task type name.
        inputs: the job's inputs: a function of the state, a list of state keys, or None (the
            whole state).
        output: where the outputs go: a state key, a function ``outputs -> update``, or None
            (the outputs are the update).
        poll: a :class:`Poll` (or a fixed interval in seconds).
        timeout: seconds from the job's creation after which it is deleted and the node fails
            with :class:`JobTimeoutError`.
        inline: polls due within this many seconds sleep in the node; later ones pause the run
            durably (the default, 0: every pause is durable).
        max_poll_errors: ``get`` failures in a row tolerated before the job is deleted and the
            node fails.
    """

    def __init__(self, agent: Any, *, inputs: Callable[[Any], Any] | list[str] | None = None,
                 output: str | Callable[[Any], dict[str, Any]] | None = None,
                 poll: Poll | float = Poll(), timeout: float | None = None,
                 inline: float = 0.0, max_poll_errors: int = 5) -> None:
        super().__init__(agent, inputs, output)
        for method in ("create", "get", "delete"):
            if not callable(getattr(self.agent, method, None)):
                raise TypeError(f"JobNode({self.task_type!r}): the agent has no {method}(); a "
                                f"job agent has create, get and delete")
        self.poll = _poll_policy(poll)
        self.timeout = timeout
        self.inline = inline
        self.max_poll_errors = max_poll_errors

    def __repr__(self) -> str:
        return f"JobNode({self.task_type!r})"

    # -- the agent's calls ----------------------------------------------------------------

    def _create(self, inputs: Any, key: str) -> Any:
        create = self.agent.create
        if _accepts(create, "idempotency_key"):
            return _call(create, inputs, idempotency_key=key)
        return _call(create, inputs)

    def _status(self, handle: Any) -> JobStatus:
        return to_status(_call(self.agent.get, handle), f"{self.task_type} agent's get()")

    def _delete(self, handle: Any) -> None:
        _call(self.agent.delete, handle)

    def _start(self, ctx: RunContext, state: Any) -> Any:
        inputs = self._inputs(state)
        key = ctx.idempotency_key()
        return ctx.step("create", self._create, inputs, key)

    # -- the node ---------------------------------------------------------------------------

    def __call__(self, state: Any, ctx: RunContext) -> dict[str, Any]:
        run, task = ctx._run, ctx._task
        if task is None or run.checkpointer is None:
            raise GraphflowError(f"node {ctx.node!r}: a job node needs a checkpointer and a "
                                 f"thread (compile(checkpointer=...), invoke(..., thread=...))")
        handle = self._start(ctx, state)
        started = ctx.step("started", time.time)
        try:
            return self._follow(ctx, handle, started)
        except JobError:
            raise
        except Exception:
            self._delete(handle)  # the node fails: the job must not run on unwatched
            raise

    def _follow(self, ctx: RunContext, handle: Any, started: float) -> dict[str, Any]:
        run, task = ctx._run, ctx._task
        assert task is not None
        saver = run.checkpointer
        assert saver is not None
        slot = run.task_id(run.step, task.name, task.index) + "#poll"
        journal = run.journal(slot)
        attempt, nxt, errors = journal[0] if journal else (0, None, 0)
        wid = poll_wait_id(run, task)
        while True:
            if nxt is not None:
                if nxt - time.time() <= self.inline:
                    time.sleep(max(nxt - time.time(), 0.0))
                if pause(run, task, until=nxt, signal=CANCEL_SIGNAL, kind="poll",
                         what="a job node"):
                    return self._cancelled(ctx, handle)
            elif saver.claim_signal(run.thread or "", CANCEL_SIGNAL, wid) is not MISSING:
                return self._cancelled(ctx, handle)
            try:
                status = self._status(handle)
                errors = 0
            except Exception:
                errors += 1
                if errors > self.max_poll_errors:
                    raise
                status = JobStatus("running")
            if status.phase == SUCCEEDED:
                return self._update(ctx.node, status.outputs)
            if status.done:
                raise JobFailedError(ctx.node, status)
            if self.timeout is not None and time.time() >= started + self.timeout:
                self._delete(handle)
                raise JobTimeoutError(f"node {ctx.node!r}: the job did not finish within "
                                      f"{self.timeout:g} s; it was deleted")
            attempt += 1
            nxt = time.time() + self.poll.delay(attempt)
            if self.timeout is not None:
                nxt = min(nxt, started + self.timeout)
            run.record(slot, 0, [attempt, nxt, errors])

    def _cancelled(self, ctx: RunContext, handle: Any) -> dict[str, Any]:
        self._delete(handle)
        raise JobCancelledError(f"node {ctx.node!r}: the job was cancelled (and deleted)")


class SensorNode(JobNode):
    """A node that waits until ``sensor.poke(inputs)`` is true, checking every ``interval``
    seconds (a durable pause in between, or in the node below ``inline``); fails with
    :class:`JobTimeoutError` after ``timeout`` seconds. ``output``: a state key set to True
    when the sensor fires (default: no update)."""

    def __init__(self, sensor: Any, *, interval: float = 60.0, timeout: float | None = None,
                 inputs: Callable[[Any], Any] | list[str] | None = None,
                 output: str | None = None, inline: float = 0.0) -> None:
        _Node.__init__(self, sensor, inputs, output)
        if not callable(getattr(self.agent, "poke", None)):
            raise TypeError(f"SensorNode({self.task_type!r}): a sensor has poke()")
        self.poll = Poll(interval, 1.0, interval)
        self.timeout = timeout
        self.inline = inline
        self.max_poll_errors = 5

    def __repr__(self) -> str:
        return f"SensorNode({self.task_type!r})"

    def _start(self, ctx: RunContext, state: Any) -> Any:
        return self._inputs(state)  # the sensor's inputs are its "handle"

    def _status(self, handle: Any) -> JobStatus:
        fired = _call(self.agent.poke, handle)
        return JobStatus(SUCCEEDED, True) if fired else JobStatus("running")

    def _delete(self, handle: Any) -> None:
        pass

    def _update(self, node: str, outputs: Any) -> dict[str, Any]:
        return {self.output: True} if isinstance(self.output, str) else {}


class AgentNode(_Node):
    """A node that calls a sync agent's ``do(inputs) -> outputs`` once (journaled: a resumed
    run does not call it again) and puts the outputs into the state."""

    def __init__(self, agent: Any, *, inputs: Callable[[Any], Any] | list[str] | None = None,
                 output: str | Callable[[Any], dict[str, Any]] | None = None) -> None:
        super().__init__(agent, inputs, output)
        if not callable(getattr(self.agent, "do", None)):
            raise TypeError(f"AgentNode({self.task_type!r}): a sync agent has do()")

    def __call__(self, state: Any, ctx: RunContext) -> dict[str, Any]:
        outputs = ctx.step("do", _call, self.agent.do, self._inputs(state))
        return self._update(ctx.node, outputs)


def cancel(graph: CompiledGraph, thread: str) -> None:
    """Cancel the jobs ``thread`` runs: its job nodes delete their jobs and fail with
    :class:`JobCancelledError` when the thread wakes (``graphflow worker``) or polls next."""
    graph.signal(thread, CANCEL_SIGNAL)


async def acancel(graph: CompiledGraph, thread: str) -> None:
    """Async :func:`cancel`."""
    await asyncio.to_thread(cancel, graph, thread)
