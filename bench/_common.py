"""Shared timing helpers for the graphflow benchmarks.

bench/ is a plain folder, not a package: ``run.py`` (run as a script) has bench/ on ``sys.path``,
so the workload modules import this one as ``_common``.

Method: a few warm-up calls, then one timed call to pick ``number`` (calls per sample) so that a
sample lasts about ``budget`` nanoseconds, then ``repeats`` samples; the result is the median of
the per-call times. ``gc.collect()`` runs before every sample; the collector stays enabled while
timing (the engine's allocation cost is part of what we measure).
"""

from __future__ import annotations

import gc
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from graphflow.models import ScriptedModel

FULL_REPEATS = 7
QUICK_REPEATS = 3
MAX_NUMBER = 10_000


class BenchCheckError(RuntimeError):
    """A workload produced a wrong result (the engine ran, but not as the contract says)."""


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise BenchCheckError(msg)


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def repeats(quick: bool) -> int:
    return QUICK_REPEATS if quick else FULL_REPEATS


def warmups(quick: bool) -> int:
    return 1 if quick else 3


def budget_ns(quick: bool) -> int:
    """Target duration of one sample."""
    return 15_000_000 if quick else 60_000_000


def _number_for(once_ns: int, quick: bool) -> int:
    return max(1, min(MAX_NUMBER, budget_ns(quick) // max(once_ns, 1)))


def median_ns(
    fn: Callable[[], Any], *, quick: bool, number: int | None = None, warmup: int | None = None
) -> float:
    """Median wall time of one ``fn()`` call, in nanoseconds."""
    for _ in range(warmups(quick) if warmup is None else warmup):
        fn()
    if number is None:
        t0 = time.perf_counter_ns()
        fn()
        number = _number_for(time.perf_counter_ns() - t0, quick)
    samples = []
    for _ in range(repeats(quick)):
        gc.collect()
        t0 = time.perf_counter_ns()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter_ns() - t0) / number)
    return statistics.median(samples)


async def amedian_ns(
    fn: Callable[[], Awaitable[Any]],
    *,
    quick: bool,
    number: int | None = None,
    warmup: int | None = None,
) -> float:
    """Like :func:`median_ns` for a coroutine function; call it inside a running event loop."""
    for _ in range(warmups(quick) if warmup is None else warmup):
        await fn()
    if number is None:
        t0 = time.perf_counter_ns()
        await fn()
        number = _number_for(time.perf_counter_ns() - t0, quick)
    samples = []
    for _ in range(repeats(quick)):
        gc.collect()
        t0 = time.perf_counter_ns()
        for _ in range(number):
            await fn()
        samples.append((time.perf_counter_ns() - t0) / number)
    return statistics.median(samples)


def rnd(x: float) -> float:
    """Round for the report (3 significant decimals is plenty for medians)."""
    return round(x, 3)


class TimedModel(ScriptedModel):
    """A ScriptedModel that adds the time it spends producing replies to ``model_ns``."""

    def __init__(self, reply: Callable[[list[Any]], Any]) -> None:
        super().__init__(reply)
        self.model_ns = 0
        # one reply at a time, timed inside the lock: with parallel branches, time spent
        # waiting for another branch's reply is not the model's own time
        self._serial = threading.Lock()

    def _generate(self, messages, *, tools, tool_choice, response_format):
        with self._serial:
            t0 = time.perf_counter_ns()
            try:
                return super()._generate(messages, tools=tools, tool_choice=tool_choice,
                                         response_format=response_format)
            finally:
                # ScriptedModel keeps every prompt for tests to inspect; over thousands of runs
                # that pile of live objects makes each garbage collection slower, which would
                # be billed to whatever code allocates next (the framework). Not here.
                self.calls.clear()
                self.model_ns += time.perf_counter_ns() - t0
