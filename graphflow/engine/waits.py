"""Durable waits: a node pausing its run until a time or a signal, woken by a scheduler.

A durable wait is an interrupt (:mod:`graphflow.engine.interrupts`) whose value is a
:class:`Wait`, plus a row in the checkpointer saying what wakes the thread (``put_wait``). The
run pauses exactly as on ``interrupt()``: the step's finished tasks keep their pending writes, the
waiting task's interrupt is stored, the run returns. A scheduler (``graphflow.durable.Worker``,
``graphflow worker``) finds due rows, takes the thread's lease (a thread another run is writing
is woken later) and continues the thread: the waiting task runs again from its start, its
journaled calls replayed, and the wait call decides again, by the clock and the mailbox:

- ``ctx.sleep(seconds)`` journals its deadline once, then passes when the clock reaches it;
  ``ctx.sleep_until(when)`` the same for an absolute time.
- ``ctx.wait_for_signal(name, timeout=...)`` claims the oldest unclaimed signal of that name
  from the thread's mailbox (``app.signal(thread, name, payload)``), so a signal sent before the
  wait is not lost; the claim and the outcome (payload or timeout) are journaled.

The row is registered *before* the mailbox is read, and a signal marks the rows waiting for it
as woken after it is stored, so a signal is never missed between the two. A wait that resolved
leaves its row to the scheduler that woke it, which deletes the rows it woke once the run ends
(by their token, so a row registered again meanwhile stays): a run that dies after being woken
leaves its rows, and the next scheduler pass wakes the thread again. (A row left by a run
continued by hand is dropped by the scheduler when the thread has nothing due.)
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..checkpoint.durable import MISSING, WaitRow
from ..errors import GraphflowError, SignalTimeoutError
from .interrupts import GraphInterrupt, Interrupt, interrupt_id
from .journal import journaled

if TYPE_CHECKING:
    from ..checkpoint.base import Checkpointer
    from ..checkpoint.lease import Lease
    from .compiled import CompiledGraph
    from .run import Run
    from .task import Task

__all__ = ["CANCEL_SIGNAL", "Wait", "is_timer", "notify", "pause", "poll_wait_id", "resume_woken",
           "wait_answer", "watch"]

#: The signal that cancels what a job node waits for (``graphflow.jobs.cancel``).
CANCEL_SIGNAL = "graphflow.cancel"

_SIGNAL = "signal"
_ELAPSED = {"__wait__": "elapsed"}
_TIMEOUT = {"__wait__": "timeout"}


@dataclass(frozen=True, slots=True)
class Wait:
    """Why a run is paused by a durable wait: the ``value`` of its :class:`Interrupt`.

    Attributes:
        until: when it wakes by itself (seconds since the epoch; a signal's timeout), or None.
        signal: the signal it waits for, or None.
        kind: ``"sleep"`` (a timer), ``"signal"`` (answerable with ``Command(resume=...)``,
            which delivers the payload), or ``"poll"`` (a job or sensor's next check).
    """

    until: float | None = None
    signal: str | None = None
    kind: str = "sleep"

    @property
    def wakes_at(self) -> datetime | None:
        """:attr:`until` as an aware UTC datetime."""
        return None if self.until is None else datetime.fromtimestamp(self.until, UTC)


def is_timer(value: Any) -> bool:
    """Whether an interrupt's value is a durable wait that no ``Command(resume=...)`` answers
    (a timer or a job's poll): it wakes by itself."""
    return isinstance(value, Wait) and value.kind != _SIGNAL


def wait_answer(value: Any) -> Any:
    """What ``Command(resume=value)`` journals for a signal wait: the delivered payload."""
    return {"__wait__": _SIGNAL, "payload": value}


# -- waking schedulers in this process --------------------------------------------------------

_WATCHERS: dict[int, weakref.WeakSet[Any]] = {}
_WATCH_LOCK = threading.Lock()


def watch(saver: Checkpointer, watcher: Any) -> None:
    """Have ``watcher.notify()`` called when a wait is registered or a signal sent through
    ``saver`` in this process (a scheduler looks at once instead of at its next poll)."""
    with _WATCH_LOCK:
        _WATCHERS.setdefault(id(saver), weakref.WeakSet()).add(watcher)


def notify(saver: Checkpointer) -> None:
    """Tell this process's schedulers on ``saver`` that something may be due."""
    watchers = _WATCHERS.get(id(saver))
    if watchers:
        for w in list(watchers):
            w.notify()


# -- waiting ------------------------------------------------------------------------------------

def _root(run: Run) -> Run:
    while run.parent is not None:
        run = run.parent
    return run


def _saver(run: Run, task: Task, what: str) -> Checkpointer:
    if run.checkpointer is None:
        raise GraphflowError(
            f"node {task.name!r} called {what} in a run without a checkpointer and thread: a "
            f"durable wait needs compile(checkpointer=...) and invoke(..., thread=...)")
    return run.checkpointer


def _register(run: Run, saver: Checkpointer, wid: str, until: float | None,
              signal: str | None) -> str:
    token = os.urandom(8).hex()
    saver.put_wait(WaitRow(run.thread or "", wid, run.ns, _root(run).graph.name, until, signal,
                           token))
    notify(saver)
    return token


def _outcome(answer: Any, signal: str | None) -> Any:
    if isinstance(answer, dict) and answer.get("__wait__") == _SIGNAL:
        return answer.get("payload")
    if answer == _TIMEOUT:
        raise SignalTimeoutError(signal or "")
    return None


def poll_wait_id(run: Run, task: Task) -> str:
    """The id of the one non-positional wait of a task (a job node's next poll)."""
    task_id = run.task_id(run.step, task.name, task.index)
    return interrupt_id(run.thread or "", run.ns, task_id + "#poll", 0)


def pause(run: Run, task: Task, *, until: float | None, signal: str | None = None,
          kind: str = "sleep", what: str = "ctx.sleep()") -> Any:
    """Pass, or pause the run, at this task's next wait (see the module docstring).

    Returns None for a timer, the signal's payload for a signal; raises
    :class:`SignalTimeoutError` when a signal's ``until`` passed first. ``kind="poll"``: the
    wait is not positional (a job node pauses at the same wait every poll): it journals nothing
    and is decided by the clock and the mailbox alone; it returns True when ``signal`` arrived,
    False when the time came.
    """
    saver = _saver(run, task, what)
    thread = run.thread or ""
    task_id = run.task_id(run.step, task.name, task.index)
    poll = kind == "poll"
    if poll:
        index, key = -1, ""
        wid = poll_wait_id(run, task)
    else:
        index = task.n_interrupts
        task.n_interrupts += 1
        key = task_id + "#resume"
        answers = run.journal(key)
        if index < len(answers):
            return _outcome(answers[index], signal)
        wid = interrupt_id(thread, run.ns, task_id, index)

    token = None

    def resolved(answer: dict[str, Any] | None) -> None:
        if token is not None:  # registered a moment ago, by this very call
            saver.delete_wait(thread, wid, token)
        if not poll:
            run.record(key, index, answer)

    while True:  # at most twice: before and after registering the row
        if signal is not None:
            got = saver.claim_signal(thread, signal, wid)
            if got is not MISSING:
                resolved(wait_answer(got))
                return True if poll else got
        if until is not None and until <= time.time():
            if signal is None or poll:
                resolved(_ELAPSED)
                return False if poll else None
            resolved(_TIMEOUT)
            raise SignalTimeoutError(signal)
        if token is not None or signal is None:
            break
        token = _register(run, saver, wid, until, signal)
    if token is None:
        _register(run, saver, wid, until, signal)
    raise GraphInterrupt([Interrupt(wid, Wait(until, signal, kind), task.name, run.ns, task_id,
                                    index)])


def sleep_for(run: Run, task: Task, seconds: float) -> None:
    """``ctx.sleep(seconds)``: a deadline journaled once, then :func:`pause` until it."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
        raise ValueError(f"node {task.name!r}: ctx.sleep() takes seconds >= 0, got {seconds!r}")
    deadline = journaled(run, task, "sleep", lambda: time.time() + seconds)
    pause(run, task, until=deadline)


def epoch(when: datetime | float, node: str) -> float:
    """``when`` in seconds since the epoch (a naive datetime is taken as UTC)."""
    if isinstance(when, datetime):
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    if isinstance(when, (int, float)) and not isinstance(when, bool):
        return float(when)
    raise TypeError(f"node {node!r}: ctx.sleep_until() takes a datetime or seconds since the "
                    f"epoch, got {type(when).__name__} {when!r:.60}")


def wait_signal(run: Run, task: Task, name: str, timeout: float | None) -> Any:
    """``ctx.wait_for_signal(name, timeout=...)``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"node {task.name!r}: a signal name is a non-empty str, got {name!r}")
    until = None
    if timeout is not None:
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout < 0:
            raise ValueError(f"node {task.name!r}: wait_for_signal timeout must be seconds >= 0, "
                             f"got {timeout!r}")
        until = journaled(run, task, f"signal {name} timeout", lambda: time.time() + timeout)
    return pause(run, task, until=until, signal=name, kind=_SIGNAL,
                 what="ctx.wait_for_signal()")


class Ready:
    """An already computed value that can be awaited: what the wait methods of ``ctx`` return
    inside ``async def`` nodes, so ``await ctx.sleep(...)`` reads as it does elsewhere."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Any:
        return self.value
        yield  # a generator, so this is an awaitable that completes at once


def awaitable_if(task: Task | None, call: Callable[[], Any]) -> Any:
    """``call()``, wrapped in :class:`Ready` for an async node."""
    value = call()
    return Ready(value) if task is not None and task.spec.is_async else value


# -- waking ------------------------------------------------------------------------------------

def resume_woken(graph: CompiledGraph, thread: str, lease: Lease) -> Any:
    """Continue ``thread`` under ``lease`` (already held; released when the run ends): the
    waiting tasks run again. Returns what ``invoke`` would."""
    from .async_driver import run_async
    from .compiled import _run_blocking
    from .run import Run
    from .sync_driver import run_sync

    run = Run(graph, None, thread=thread)
    run.lease = lease
    if graph._has_async:
        async def drive() -> None:
            async for _ in run_async(run):
                pass

        _run_blocking(drive)
    else:
        for _ in run_sync(run):
            pass
    return run.result()
