"""The scheduler that wakes threads paused on durable waits: :class:`Worker`.

It reads the checkpointer's wait rows (``due_waits``), and for each thread with a due row takes
the thread's lease and continues the thread (:func:`graphflow.engine.waits.resume_woken`). A
thread another run is writing is skipped and tried again shortly (one writer per thread). The
rows it woke are deleted once the run ends; if this process dies first they stay, and the next
pass of any worker wakes the thread again.

One core, three ways to drive it: :meth:`Worker.wake_due` (one pass), :meth:`Worker.run` (a loop
in this thread: ``graphflow worker``), :meth:`Worker.serve` (a loop on an event loop, for a
server process that hosts it beside its routes). Between passes it sleeps until the soonest known
wake-up or ``poll`` seconds, whichever is first. A wait registered or a signal sent in this
process wakes it at once; so does one of another process on PostgreSQL (``LISTEN``/``NOTIFY``,
see ``listen``); elsewhere (SQLite) another process's are seen at the next poll.

The loops also forget entity operation results older than ``keep_entity_ops`` (see
``docs/jobs.md``), at their first pass and then every hour.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..checkpoint.lease import Lease
from ..engine.waits import resume_woken, watch
from ..errors import GraphflowError, ThreadBusyError

if TYPE_CHECKING:
    from ..checkpoint.base import Checkpointer, StateSnapshot
    from ..checkpoint.durable import WaitRow
    from ..engine.compiled import CompiledGraph

__all__ = ["Woken", "Worker"]

log = logging.getLogger("graphflow.worker")

#: How long a Worker keeps entity operation results by default (seconds): a week.
KEEP_ENTITY_OPS = 7 * 24 * 3600.0
#: How often its loops prune them (seconds).
PRUNE_EVERY = 3600.0


@dataclass(frozen=True, slots=True)
class Woken:
    """What waking one thread did.

    Attributes:
        thread: the thread.
        graph: the graph that continued it.
        outcome: ``"finished"`` (the run ended), ``"paused"`` (it waits again: a timer, a
            signal, an interrupt), ``"failed"`` (a node raised: the thread keeps its error, as
            after any failed run), ``"busy"`` (another run writes it: tried again soon),
            ``"stale"`` (nothing was due any more), ``"error"`` (the store failed: tried again).
        error: the exception of a failed or erroring wake.
    """

    thread: str
    graph: str
    outcome: str
    error: BaseException | None = None


class Worker:
    """Wakes the threads of ``graphs`` whose durable waits are due.

    Args:
        graphs: the compiled graphs whose threads it continues, told apart by their names
            (``compile(name=...)``: name graphs that share a database differently). They must
            share one checkpointer.
        poll: the longest pause between two looks at the store (seconds): how late a wait
            registered by another process can be noticed.
        concurrency: threads woken at once in one pass.
        batch: the most due rows read per pass.
        listen: in the loops, be told at once of waits registered and signals sent by other
            processes, where the store can tell (PostgreSQL: ``LISTEN``/``NOTIFY``, one more
            connection); otherwise they are seen at the next poll.
        keep_entity_ops: seconds an entity operation's result is kept (a call repeated within
            that time is applied once); the loops prune older ones every hour. None: keep
            them all.
    """

    def __init__(self, *graphs: CompiledGraph, poll: float = 1.0, concurrency: int = 4,
                 batch: int = 100, listen: bool = True,
                 keep_entity_ops: float | None = KEEP_ENTITY_OPS) -> None:
        if not graphs:
            raise ValueError("Worker needs at least one compiled graph")
        savers = {id(g.checkpointer) for g in graphs}
        saver = graphs[0].checkpointer
        if saver is None or len(savers) != 1:
            raise GraphflowError("Worker: every graph needs a checkpointer, the same one "
                                 "(compile(checkpointer=...))")
        by_name: dict[str, CompiledGraph] = {}
        for g in graphs:
            if g.name in by_name and by_name[g.name] is not g:
                raise GraphflowError(f"Worker: two graphs are named {g.name!r}; name them apart "
                                     f"with compile(name=...)")
            by_name[g.name] = g
        if poll <= 0 or concurrency < 1 or batch < 1:
            raise ValueError("Worker: poll must be > 0, concurrency and batch >= 1")
        if keep_entity_ops is not None and not keep_entity_ops >= 0:
            raise ValueError(f"Worker: keep_entity_ops must be >= 0 seconds or None, not "
                             f"{keep_entity_ops!r}")
        self.saver: Checkpointer = saver
        self.graphs = by_name
        self.poll = poll
        self.concurrency = concurrency
        self.batch = batch
        self.listen = listen
        self.keep_entity_ops = keep_entity_ops
        self._prune_at = 0.0  # (monotonic) the loops' next pruning
        self._busy: dict[str, tuple[float, float]] = {}  # thread -> (retry at, last pause)
        self._wake = threading.Event()
        self._async_wake: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self._pool: ThreadPoolExecutor | None = None
        watch(saver, self)

    def __repr__(self) -> str:
        return f"Worker({', '.join(self.graphs)}, poll={self.poll})"

    def notify(self) -> None:
        """Something may be due: look now (called by this process's waits and signals)."""
        self._wake.set()
        hook = self._async_wake
        if hook is not None:
            loop, event = hook
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    # -- one pass ----------------------------------------------------------------------------

    def wake_due(self) -> list[Woken]:
        """Wake every thread that has a due wait now (up to ``batch`` rows); what each did."""
        now = time.time()
        rows = self.saver.due_waits(now, list(self.graphs), self.batch)
        by_thread: dict[str, list[WaitRow]] = {}
        for row in rows:
            retry = self._busy.get(row.thread)
            if retry is not None and retry[0] > time.monotonic():
                continue
            by_thread.setdefault(row.thread, []).append(row)
        if not by_thread:
            return []
        items = list(by_thread.items())
        if len(items) == 1 or self.concurrency == 1:
            return [self._wake_thread(t, r) for t, r in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="graphflow-wake")
        return list(self._pool.map(lambda item: self._wake_thread(*item), items))

    def _wake_thread(self, thread: str, rows: list[WaitRow]) -> Woken:
        graph = self.graphs[rows[0].graph]
        saver = self.saver
        lease = Lease(saver, thread, saver.lease_ttl)
        try:
            holder = lease.try_acquire()
        except Exception as exc:  # the store is down: try again later
            return self._retry(thread, graph.name, "error", exc)
        if holder is not None:
            return self._retry(thread, graph.name, "busy")
        self._busy.pop(thread, None)
        try:
            head = saver.get(thread)
            if head is None or not head.next:
                outcome, error = "stale", None
            else:
                result = resume_woken(graph, thread, lease)
                paused = isinstance(result, dict) and "__interrupt__" in result
                outcome, error = ("paused" if paused else "finished"), None
        except ThreadBusyError as exc:  # lost the lease mid-run: the new writer has it
            return self._retry(thread, graph.name, "busy", exc)
        except GraphflowError as exc:  # the run failed, as any run may: the thread keeps it
            log.warning("woken thread %r of graph %r failed: %s", thread, graph.name, exc)
            outcome, error = "failed", exc
        except Exception as exc:
            log.warning("waking thread %r failed: %s", thread, exc)
            return self._retry(thread, graph.name, "error", exc)
        finally:
            lease.release()
        for row in rows:  # the rows this wake saw; a wait registered again has a new token
            saver.delete_wait(thread, row.wait_id, row.token)
        return Woken(thread, graph.name, outcome, error)

    def _retry(self, thread: str, graph: str, outcome: str,
               error: BaseException | None = None) -> Woken:
        last = self._busy.get(thread, (0.0, 0.0))[1]
        pause = min(max(last * 2, 0.01), self.poll)
        self._busy[thread] = (time.monotonic() + pause, pause)
        return Woken(thread, graph, outcome, error)

    def _delay(self) -> float:
        """Seconds until the next pass: the soonest wake-up, a busy thread's retry, or poll."""
        delay = self.poll
        nxt = self.saver.next_wake(list(self.graphs))
        if nxt is not None:
            delay = min(delay, max(nxt - time.time(), 0.0))
        mono = time.monotonic()
        retries = [at for at, _ in self._busy.values()]
        if retries:
            delay = min(delay, max(min(retries) - mono, 0.0))
        if delay == 0.0 and self._busy and (nxt is None or nxt > time.time()):
            delay = 0.005
        return delay

    # -- loops -------------------------------------------------------------------------------

    def run(self, *, stop: threading.Event | None = None,
            until: Callable[[], bool] | None = None,
            on_wake: Callable[[Woken], Any] | None = None) -> None:
        """Wake due threads until ``stop`` is set or ``until()`` is true (checked after every
        pass), sleeping in between (see the module docstring)."""
        unlisten = self._listen()
        try:
            while not (stop is not None and stop.is_set()):
                self._wake.clear()
                for woken in self._pass():
                    if on_wake is not None:
                        on_wake(woken)
                if until is not None and until():
                    return
                delay = self._delay()
                if stop is not None and stop.is_set():
                    return
                if delay > 0:
                    self._wake.wait(delay)
        finally:
            if unlisten is not None:
                unlisten()

    def _listen(self) -> Callable[[], None] | None:
        """Start listening for other processes' waits and signals (see ``listen``); what
        stops it. Before the first pass, so nothing registered meanwhile is missed."""
        if not self.listen:
            return None
        try:
            return self.saver.listen_wakes(list(self.graphs), self.notify)
        except Exception as exc:  # e.g. the database is down: the passes retry, we poll
            log.warning("worker cannot listen for wake-ups (%s); it polls every %s s", exc,
                        self.poll)
            return None

    def _pass(self) -> list[Woken]:
        self._prune()
        try:
            return self.wake_due()
        except Exception as exc:  # the store is unreachable: keep going, it may come back
            log.warning("worker pass failed: %s", exc)
            return []

    def _prune(self) -> None:
        """Forget entity operation results older than ``keep_entity_ops``, once an hour."""
        keep = self.keep_entity_ops
        if keep is None or time.monotonic() < self._prune_at:
            return
        self._prune_at = time.monotonic() + PRUNE_EVERY
        try:
            gone = self.saver.prune_entity_ops(keep)
        except Exception as exc:  # tried again in an hour
            log.warning("worker could not prune entity operation results: %s", exc)
            return
        if gone:
            log.info("worker pruned %d entity operation result(s) older than %s s", gone, keep)

    async def serve(self, stop: asyncio.Event | None = None,
                    on_wake: Callable[[Woken], Any] | None = None) -> None:
        """:meth:`run` on the running event loop (the passes run in a worker thread), until
        ``stop`` is set or the task is cancelled: for a server process hosting the scheduler."""
        event = asyncio.Event()
        self._async_wake = (asyncio.get_running_loop(), event)
        unlisten = None
        try:
            unlisten = await asyncio.to_thread(self._listen)
            while not (stop is not None and stop.is_set()):
                event.clear()
                for woken in await asyncio.to_thread(self._pass):
                    if on_wake is not None:
                        on_wake(woken)
                delay = await asyncio.to_thread(self._delay)
                if delay <= 0:
                    continue
                waits = [asyncio.ensure_future(event.wait())]
                if stop is not None:
                    waits.append(asyncio.ensure_future(stop.wait()))
                _, pending = await asyncio.wait(waits, timeout=delay,
                                                return_when=asyncio.FIRST_COMPLETED)
                for fut in pending:
                    fut.cancel()
        finally:
            self._async_wake = None
            if unlisten is not None:
                await asyncio.to_thread(unlisten)

    def wait_for(self, threads: str | Iterable[str], *,
                 timeout: float | None = None) -> dict[str, StateSnapshot | None]:
        """Wake threads in this process until none of ``threads`` waits on a durable wait any
        more (finished, failed, or paused on an ``interrupt()``); their states. Raises
        ``TimeoutError`` after ``timeout`` seconds."""
        names = [threads] if isinstance(threads, str) else list(threads)
        deadline = None if timeout is None else time.monotonic() + timeout
        saver = self.saver
        stop = threading.Event()

        def settled() -> bool:
            if all(not saver.waits(t) for t in names):
                return True
            if deadline is not None and time.monotonic() > deadline:
                stop.set()
            return False

        if not settled():
            self.run(stop=stop, until=settled)
        if not settled():
            raise TimeoutError(f"threads {names} still wait after {timeout} s")
        graph = next(iter(self.graphs.values()))
        return {t: graph.get_state(t) for t in names}

    def close(self) -> None:
        """Stop the pass pool (idempotent)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
