"""Reusable daemon threads for work that must not run in its caller's thread: the tasks of a
parallel superstep and tool calls run concurrently (:func:`run_all`), and calls watched by a
timeout (:func:`start`).

Starting a thread costs ~100-250 µs; handing work to a waiting one costs a queue put. The pool
never makes a job wait for a busy worker: when none is idle it starts another, so a tool that
hangs (its caller gave up on it after a timeout) only keeps its own worker. Workers are daemon
threads (a hung tool never keeps the interpreter alive) and end after a minute without work.
Each job runs in a copy of the submitter's context (``interrupt()``, ``ctx.step()`` and the
journal scope keep working in it).
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Job", "run_all", "run_each", "start"]

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
    """Functions run concurrently by the caller's thread and helpers (see :func:`run_all`).

    The hot path takes no lock: a function is claimed with ``next()`` on a shared counter and
    its end counted the same way (both atomic under the GIL), so threads never queue on a lock
    held by one that the interpreter paused.
    """

    def __init__(self, fn: Callable[[Any], Any], items: list[Any], helpers: int | None,
                 patience: float | None, keep: bool) -> None:
        self.fn = fn
        self.fns = items
        # (True, value) or (False, exception) per item when ``keep``; else only the exceptions
        self.outcomes: list[tuple[bool, Any]] = [(False, None)] * len(items) if keep else []
        self.errors: dict[int, BaseException] = {}
        self._claims = itertools.count()  # next(): the index of the function to start
        self._ends = itertools.count(1)  # next(): how many functions have finished
        self.asked = 0  # helpers asked for that have not started yet
        self.spare = len(items) if helpers is None else helpers  # helpers it may still ask for
        self.patience = patience
        self.started_at = time.monotonic()  # when a function last started
        self.claimed = 0  # functions claimed so far (at least; for the watcher)
        self.burst = 1  # helpers the watcher adds next time it finds the batch stuck
        self.lock = threading.Lock()  # only for asking for helpers
        self.finished = threading.Event()

    def _take(self) -> int | None:
        i = next(self._claims)
        n = len(self.fns)
        if i >= n:
            return None
        self.claimed = i + 1
        if self.patience is not None:  # the watcher adds helpers if it gets stuck
            self.started_at = time.monotonic()
            return i
        if i + 1 < n and not self.asked:
            with self.lock:
                ask = not self.asked and self.spare > 0
                if ask:
                    self.asked, self.spare = 1, self.spare - 1
            if ask:  # before running the call, which may block: the rest must not wait for it
                start(self._help)
        return i

    def stuck(self, now: float) -> int:
        """Helpers to add because no function started for ``patience`` seconds while some wait
        (doubling while it stays stuck); 0 when it is making progress."""
        with self.lock:
            if now - self.started_at < (self.patience or 0.0):
                self.burst = 1
                return 0
            waiting = len(self.fns) - self.claimed
            if waiting <= 0 or self.asked or self.spare <= 0:
                return 0
            n = min(self.burst, waiting, self.spare)
            self.burst *= 2
            self.asked += n
            self.spare -= n
            return n

    def _help(self) -> None:
        with self.lock:
            self.asked -= 1
        self.drain()

    def drain(self) -> None:
        """Take and run functions until none is left to start."""
        fn, items, outcomes, last = self.fn, self.fns, self.outcomes, len(self.fns)
        while (i := self._take()) is not None:
            try:
                value = fn(items[i])
                if outcomes:
                    outcomes[i] = (True, value)
            except BaseException as exc:  # handed back in order, raised by nobody here
                self.errors[i] = exc
                if outcomes:
                    outcomes[i] = (False, exc)
            if next(self._ends) == last:
                self.finished.set()


class _Watcher:
    """One thread that adds helpers to patient batches that stopped making progress."""

    def __init__(self) -> None:
        self._batches: set[_Batch] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, batch: _Batch) -> None:
        with self._lock:
            self._batches.add(batch)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="graphflow-watcher",
                                                daemon=True)
                self._thread.start()
        self._wake.set()

    def discard(self, batch: _Batch) -> None:
        with self._lock:
            self._batches.discard(batch)

    def _loop(self) -> None:
        while True:
            with self._lock:
                batches = list(self._batches)
            if not batches:
                self._wake.wait()
                self._wake.clear()
                continue
            now = time.monotonic()
            for batch in batches:
                for _ in range(batch.stuck(now)):
                    start(batch._help)
            tick = min(b.patience or 0.001 for b in batches)
            del batches
            self._wake.wait(tick)
            self._wake.clear()


_WATCHER = _Watcher()


def run_each(fn: Callable[[Any], Any], items: list[Any], *, helpers: int | None = None,
             patience: float | None = None) -> dict[int, BaseException]:
    """Call ``fn(item)`` for every item concurrently (see :func:`run_all`); the exceptions
    raised, by index. No allocation per item: for fan-outs of many small calls."""
    return _run(_Batch(fn, items, helpers, patience, keep=False)).errors


def run_all(fns: list[Callable[[], Any]], *, helpers: int | None = None,
            patience: float | None = None) -> list[tuple[bool, Any]]:
    """Run every function of ``fns`` concurrently; ``(True, value)`` or ``(False, exception)``
    for each, in order. ``helpers``: the most helper threads to use (None: as many as the
    functions need, one each when they all block; a bound makes the rest wait their turn).

    The caller's thread runs functions too. Without ``patience``, whoever starts a function
    while others are still waiting first asks for one helper thread (one request outstanding
    at a time): functions that return quickly are mostly run by the caller before a helper
    even wakes up, while functions that block each get a thread of their own within moments.
    With ``patience`` (seconds), no helper is asked for up front: the caller runs the functions
    one after another, and only when no function has started for ``patience`` seconds while
    others wait (one blocks) does a watcher thread add helpers, doubling while it stays stuck
    (1, 2, 4, ...). Quick functions then cost no thread at all; blocking ones start within
    about ``2 * patience`` of each other.
    """
    return _run(_Batch(_call, fns, helpers, patience, keep=True)).outcomes


def _call(fn: Callable[[], Any]) -> Any:
    return fn()


def _run(batch: _Batch) -> _Batch:
    if batch.patience is not None and len(batch.fns) > 1:
        batch.started_at = time.monotonic()
        _WATCHER.add(batch)
        try:
            batch.drain()
            batch.finished.wait()
        finally:
            _WATCHER.discard(batch)
        return batch
    batch.drain()
    batch.finished.wait()
    return batch
