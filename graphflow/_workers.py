"""Reusable daemon threads for work that must not run in its caller's thread: tool calls run in
parallel (:func:`run_all`), and calls watched by a timeout (:func:`start`).

Starting a thread costs ~100-250 µs; handing work to a waiting one costs a queue put. The pool
never makes a job wait for a busy worker: when none is idle it starts another, so a tool that
hangs (its caller gave up on it after a timeout) only keeps its own worker. Workers are daemon
threads (a hung tool never keeps the interpreter alive) and end after a minute without work.
Each job runs in a copy of the submitter's context (``interrupt()``, ``ctx.step()`` and the
journal scope keep working in it).
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Job", "run_all", "start"]

IDLE_SECONDS = 60.0
log = logging.getLogger("graphflow")


class Job:
    """One piece of work handed to a worker: wait for it, then read its outcome."""

    __slots__ = ("_done", "_fn", "_then", "error", "value")

    def __init__(self, fn: Callable[[], Any], then: Callable[[Job], None] | None) -> None:
        self._fn = fn
        self._then = then
        self._done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.value = self._fn()
        except BaseException as exc:  # handed to whoever waits, unchanged
            self.error = exc
        self._fn = None  # type: ignore[assignment]  # drop references as soon as done
        self._done.set()
        if self._then is not None:
            try:
                self._then(self)
            except Exception:  # the worker lives on for the next job
                log.exception("graphflow worker: a job's completion callback failed")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has finished (True), or ``timeout`` seconds passed (False)."""
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def result(self) -> Any:
        """The job's return value, or its exception raised (call after :meth:`wait`)."""
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        return self.value


class _Pool:
    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # workers waiting for a job that no submitter has counted on yet

    def submit(self, job: Job) -> None:
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1
        self._jobs.put(job)
        if spawn:
            threading.Thread(target=self._work, name="graphflow-worker", daemon=True).start()

    def _work(self) -> None:
        jobs = self._jobs
        while True:
            try:
                job = jobs.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:  # an idle slot nobody counts on: leave with it
                        self._idle -= 1
                        return
                continue  # a submitter counted on this worker: its job is on the way
            job.run()
            del job
            with self._lock:
                self._idle += 1


_POOL = _Pool()


def start(fn: Callable[[], Any], *, then: Callable[[Job], None] | None = None) -> Job:
    """Run ``fn()`` on a worker thread, in a copy of the current context. ``then(job)`` is
    called on the worker when it has finished."""
    context = contextvars.copy_context()
    job = Job(lambda: context.run(fn), then)
    _POOL.submit(job)
    return job


class _Batch:
    """Functions run concurrently by the caller's thread and helpers (see :func:`run_all`)."""

    def __init__(self, fns: list[Callable[[], Any]]) -> None:
        self.fns = fns
        self.outcomes: list[tuple[bool, Any]] = [(False, None)] * len(fns)
        self.next = 0  # the next function to start
        self.left = len(fns)  # functions not finished
        self.asked = False  # a helper was asked for and has not started yet
        self.lock = threading.Lock()
        self.finished = threading.Event()

    def _take(self) -> int | None:
        with self.lock:
            i = self.next
            if i == len(self.fns):
                return None
            self.next = i + 1
            ask = self.next < len(self.fns) and not self.asked
            if ask:
                self.asked = True
        if ask:  # before running the call, which may block: the rest must not wait for it
            start(self._help)
        return i

    def _help(self) -> None:
        with self.lock:
            self.asked = False
        self.drain()

    def drain(self) -> None:
        """Take and run functions until none is left to start."""
        while (i := self._take()) is not None:
            try:
                self.outcomes[i] = (True, self.fns[i]())
            except BaseException as exc:  # handed back in order, raised by nobody here
                self.outcomes[i] = (False, exc)
            with self.lock:
                self.left -= 1
                if self.left == 0:
                    self.finished.set()


def run_all(fns: list[Callable[[], Any]]) -> list[tuple[bool, Any]]:
    """Run every function of ``fns`` concurrently; ``(True, value)`` or ``(False, exception)``
    for each, in order.

    The caller's thread runs functions too. Whoever starts a function while others are still
    waiting first asks for one helper thread (one request outstanding at a time): functions
    that return quickly are mostly run by the caller before a helper even wakes up (no
    hand-over per function), while functions that block each get a thread of their own within
    moments, so none waits for another to finish.
    """
    batch = _Batch(fns)
    batch.drain()
    batch.finished.wait()
    return batch.outcomes
