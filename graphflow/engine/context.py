""":class:`RunContext`, the second argument of nodes and routers that ask for one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..errors import GraphflowError
from ..graph.nodes import is_async_callable
from .ids import idempotency_key
from .interrupts import current
from .journal import ajournaled, journaled, next_slot

if TYPE_CHECKING:
    from .run import Run
    from .task import Task

__all__ = ["RunContext", "Runtime", "get_config", "get_stream_writer"]

C = TypeVar("C")


def _no_writer(value: Any) -> None:  # a Runtime made outside a node
    pass


@dataclass(frozen=True, slots=True)
class Runtime(Generic[C]):
    """LangGraph's runtime object: what a node declaring ``runtime: Runtime[Context]`` gets.

    Attributes:
        context: the run's ``context=`` (a dict given to a graph with a ``context_schema``
            arrives as that type).
        store: the run's store, if any.
        stream_writer: emits a value on the ``"custom"`` stream (``ctx.write``).
        previous: always None (LangGraph's functional API; graphflow has none).
    """

    context: C = None  # type: ignore[assignment]
    store: Any = None
    stream_writer: Callable[[Any], None] = _no_writer
    previous: Any = None

    __graphflow_inject__ = "runtime"  # a parameter annotated Runtime[...] receives it


class RunContext:
    """What a node knows about the run it is part of, and its step journal.

    Attributes:
        node: the node's name.
        superstep: the number of the superstep this task runs in.
        attempt: 1 for the first attempt, 2 for the first retry, ...
    """

    __slots__ = ("_index", "_run", "_task", "attempt", "node", "superstep")
    __graphflow_inject__ = "ctx"  # a parameter annotated RunContext receives the context

    def __init__(self, run: Run, node: str, superstep: int, index: int = -1,
                 task: Task | None = None) -> None:
        self._run = run
        self._index = index
        self._task = task
        self.node = node
        self.superstep = superstep
        self.attempt = 1

    @property
    def context(self) -> Any:
        """The ``context=`` object passed to ``invoke``/``stream`` (None if none was)."""
        return self._run.context

    @property
    def store(self) -> Any:
        """The run's store: ``invoke(..., store=...)``, else ``compile(store=...)`` (None if
        neither gave one). Nodes can also declare a ``store`` parameter to receive it."""
        return self._run.store

    @property
    def config(self) -> dict[str, Any]:
        """The run's config as LangGraph hands it to nodes: ``configurable`` holds the
        ``thread_id``, ``checkpoint_ns`` and the values the caller put there, beside
        ``recursion_limit`` and the other keys the call's config had. Nodes and routers can
        also declare a ``config`` parameter (or one annotated ``RunnableConfig``)."""
        run = self._run
        config = dict(run.config or {})
        configurable = dict(config.get("configurable") or {})
        if run.thread is not None:  # else a config's thread_id, kept for a graph not stored
            configurable["thread_id"] = run.thread
        configurable["checkpoint_ns"] = run.ns
        config["configurable"] = configurable
        config["recursion_limit"] = run.limit
        return config

    @property
    def runtime(self) -> Runtime[Any]:
        """LangGraph's :class:`Runtime` view of this context (what a ``runtime`` parameter, or
        one annotated ``Runtime[...]``, receives)."""
        return Runtime(context=self.context, store=self._run.store, stream_writer=self.write)

    @property
    def thread(self) -> str | None:
        """The thread this run belongs to (None for a run without a thread)."""
        return self._run.thread

    @property
    def task_id(self) -> str:
        """A deterministic id of this task within its thread: the same for the same step, node,
        ``Send`` and branch (``"3:work:1"``; see ``graphflow.engine.ids``). For a key that is
        unique across threads, to hand to an external API, use :meth:`idempotency_key`."""
        return self._run.task_id(self.superstep, self.node, self._index)

    def idempotency_key(self) -> str:
        """A stable key for the next :meth:`step` of this task: pass it to the API the step
        calls (payments, e-mail, any API that deduplicates by key) to make its effect
        exactly-once::

            receipt = ctx.step("charge", pay, amount, idempotency_key=ctx.idempotency_key())

        A journaled step's *result* is exactly-once: once stored, it is replayed, never
        recomputed. Its *effect* is at-least-once: a crash after the effect and before its
        result is stored runs the function again on resume. That second call gets the same
        key (the same thread, subgraph, step, node, ``Send`` and position of the call), so an
        API that honours idempotency keys applies the effect once. Different calls, threads,
        and forks of the history get different keys.
        """
        task = self._task
        if task is None:
            raise GraphflowError("ctx.idempotency_key() is only available inside a node")
        run = self._run
        key, index = next_slot(run, task)
        return idempotency_key(run.thread or "", run.ns, key, index)

    def write(self, value: Any) -> None:
        """Emit ``value`` on the ``"custom"`` stream, live, while the node runs."""
        self._run.emit("custom", value)

    def step(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` once for this task and journal its result.

        When the node runs again — after a crash, an error in a later line, a retry or an
        interrupt — the journaled results are returned in order instead of calling ``fn`` again.
        With an async ``fn``, ``await ctx.step(...)``. Results are stored with the thread's
        checkpointer, so they must be serializable.
        """
        task = self._task
        if task is None:
            raise GraphflowError("ctx.step() is only available inside a node")
        if is_async_callable(fn):
            return ajournaled(self._run, task, name, lambda: fn(*args, **kwargs))
        return journaled(self._run, task, name, lambda: fn(*args, **kwargs))

    # -- durable waits (graphflow.engine.waits) ----------------------------------------------

    def _waiting_task(self, what: str) -> Task:
        if self._task is None:
            raise GraphflowError(f"{what} is only available inside a node")
        return self._task

    def sleep(self, seconds: float) -> Any:
        """Pause the run durably for ``seconds``: the thread is checkpointed and the run returns
        (paused, like on ``interrupt()``); a scheduler (``graphflow worker``, or
        ``graphflow.durable.Worker``) continues it once the time has come, in this process or
        another, however long that is. No thread sleeps meanwhile.

        The node runs again from its start when woken: keep work done before the call in
        :meth:`step`. The deadline is journaled the first time, so a run woken early (or resumed
        by hand) sleeps only the rest. In an ``async def`` node, ``await ctx.sleep(...)``.
        """
        task = self._waiting_task("ctx.sleep()")
        from .waits import awaitable_if, sleep_for

        return awaitable_if(task, lambda: sleep_for(self._run, task, seconds))

    def sleep_until(self, when: Any) -> Any:
        """Like :meth:`sleep`, until ``when`` (an aware datetime, a naive one taken as UTC, or
        seconds since the epoch); passes at once if that time has passed."""
        task = self._waiting_task("ctx.sleep_until()")
        from .waits import awaitable_if, epoch, pause

        until = epoch(when, task.name)
        return awaitable_if(task, lambda: pause(self._run, task, until=until,
                                                what="ctx.sleep_until()"))

    def wait_for_signal(self, name: str, *, timeout: float | None = None) -> Any:
        """Pause the run durably until the signal ``name`` arrives for this thread
        (``app.signal(thread, name, payload)``), and return its payload.

        A signal sent before this call waits in the thread's mailbox: it is not lost. Each wait
        takes one signal (the oldest of that name). With ``timeout`` (seconds), raises
        :class:`~graphflow.SignalTimeoutError` if none came in time. ``Command(resume=payload)``
        answers the wait too. In an ``async def`` node, ``await ctx.wait_for_signal(...)``.
        """
        task = self._waiting_task("ctx.wait_for_signal()")
        from .waits import awaitable_if, wait_signal

        return awaitable_if(task, lambda: wait_signal(self._run, task, name, timeout))

    def entity(self, cls: type, key: str) -> Any:
        """The entity ``cls`` (an ``@entity`` class) of ``key``, stored by the run's
        checkpointer: its methods, each call journaled, writes applied exactly once (see
        :mod:`graphflow.durable.entities`)."""
        from ..durable.entities import bound

        return bound(self, self._run.checkpointer, cls, key)

    def __repr__(self) -> str:
        return (f"RunContext(node={self.node!r}, superstep={self.superstep}, "
                f"thread={self.thread!r}, attempt={self.attempt})")


def _here() -> RunContext:
    run, task = current()  # raises outside a node
    return RunContext(run, task.name, run.step, task.index, task)


def get_stream_writer() -> Callable[[Any], None]:
    """Inside a node: a function that emits its argument on the ``"custom"`` stream (LangGraph's
    ``get_stream_writer``; graphflow nodes can also call ``ctx.write``)."""
    return _here().write


def get_config() -> dict[str, Any]:
    """Inside a node: the run's config as LangGraph hands it to nodes (``ctx.config``)."""
    return _here().config
