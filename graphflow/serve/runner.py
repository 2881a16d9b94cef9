"""Running the server's runs: the worker of one server process, and the executor seam.

A :class:`Worker` owns the runs its process accepted (and those it took over from dead
processes). It runs a thread's runs one after another, in the order they were made, and hands
each to a :class:`RunExecutor`, which decides *where* the run executes: in a thread of this
process (:class:`ThreadRunExecutor`, the default) — or, later, somewhere else (a Ray cluster):
a job is rebuilt from its run id and the shared database, so nothing but the id must travel.

Its heartbeat thread keeps a row in ``graphflow_serve_workers`` fresh, passes cancel requests
that arrived at other processes to the runs it executes, starts runs that other processes
queued on its threads, and finds the active runs of dead workers (a local process that is gone:
at once; a silent remote one: after ``worker_ttl``) and resumes or marks them, by policy.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .._cli_render import dumps
from ..checkpoint.lease import Holder, Owner, this_process
from ..errors import RunCancelledError
from ..types import Command
from .store import RunRecord, RunStore

if TYPE_CHECKING:
    from ..engine.compiled import CompiledGraph
    from .config import ServeConfig

__all__ = ["RunExecutor", "RunJob", "ThreadRunExecutor", "Worker", "error_record", "jsonable"]

log = logging.getLogger("graphflow.serve")

#: A run's events are stored at once when the last store was longer ago than this (seconds);
#: otherwise within this long, in one transaction with those that follow (a fast run's events
#: go to the database in a few writes, not one each; a reader waits at most this long).
_BATCH_SECONDS = 0.05


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (pydantic models, dataclasses, messages, interrupts as
    their fields; see ``graphflow._cli_render.dumps``)."""
    import json

    return json.loads(dumps(value))


def error_record(exc: BaseException) -> dict[str, Any]:
    """What a run's ``error`` holds: the exception's type, message, and where (node, key)."""
    record: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    for attr in ("node", "key", "thread", "step"):
        value = getattr(exc, attr, None)
        if value is not None:
            record[attr] = value
    cause = exc.__cause__
    if cause is not None:
        record["cause"] = f"{type(cause).__name__}: {cause}"
    return record


class RunJob:
    """One attempt to execute a run: everything it needs is the run id and the worker."""

    __slots__ = ("cancel", "events", "run_id", "thread_id", "worker")

    def __init__(self, worker: Worker, run_id: str, thread_id: str) -> None:
        self.worker = worker
        self.run_id = run_id
        self.thread_id = thread_id
        self.cancel = threading.Event()
        self.events: _Events | None = None  # the run's event log, once it started

    def run(self) -> None:
        """Execute the run to its end (the executor calls this once)."""
        try:
            self.worker.execute(self)
        except Exception:  # the run's own failures are recorded; this is a bug or a lost store
            log.exception("run %s failed outside the graph", self.run_id)
        finally:
            self.worker.job_done(self)


class RunExecutor(ABC):
    """Where runs execute. :meth:`submit` must see ``job.run()`` called exactly once."""

    @abstractmethod
    def submit(self, job: RunJob) -> None:
        """Start ``job`` (or queue it until a slot is free)."""

    def shutdown(self) -> None:  # noqa: B027 (optional: nothing to release by default)
        """Stop taking jobs (running ones finish by themselves)."""


class ThreadRunExecutor(RunExecutor):
    """Runs execute in a pool of this process's threads: ``max_runs`` at once, the others
    wait their turn (still ``pending``)."""

    def __init__(self, max_runs: int) -> None:
        self.pool = ThreadPoolExecutor(max_runs, thread_name_prefix="graphflow-run")

    def submit(self, job: RunJob) -> None:
        self.pool.submit(job.run)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=False)


class _Events:
    """A run's stream events on their way to the store (and to live readers); numbered in
    order, from any thread (the run's, or the heartbeat's saying a cancel took hold)."""

    def __init__(self, worker: Worker, run_id: str) -> None:
        self.worker = worker
        self.run_id = run_id
        self.seq = worker.store.last_seq(run_id)
        self.buffer: list[tuple[int, str, str]] = []
        self.lock = threading.Lock()
        self.stored_at = 0.0

    def add(self, event: str, data: Any, *, flush: bool | None = None) -> None:
        """Number and keep an event; store it now (``flush``), or soon (by default: now if
        nothing was stored in the last moment, else with the next batch)."""
        text = dumps(data)
        with self.lock:
            self.seq += 1
            self.buffer.append((self.seq, event, text))
            if flush is False:
                return
            if flush or time.monotonic() - self.stored_at >= _BATCH_SECONDS:
                self._flush()
                return
        self.worker.flush_soon(self)

    def flush(self) -> None:
        with self.lock:
            self._flush()

    def _flush(self) -> None:
        if self.buffer:
            rows, self.buffer = self.buffer, []
            self.worker.store.add_events(self.run_id, rows)
            self.stored_at = time.monotonic()
            self.worker.notify(self.run_id)


def _modes(requested: list[str]) -> list[str]:
    return list(dict.fromkeys(requested))


class Worker:
    """The runs of one server process (see the module docstring)."""

    def __init__(self, store: RunStore, graphs: dict[str, CompiledGraph], config: ServeConfig,
                 executor: RunExecutor | None = None) -> None:
        self.store = store
        self.graphs = graphs
        self.config = config
        self.executor = executor or ThreadRunExecutor(config.max_runs)
        self.owner: Owner = this_process()
        self.id = f"{self.owner.host.split('/')[0]}:{self.owner.pid}:{self.owner.token[:12]}"
        self._lock = threading.Lock()
        self._queues: dict[str, deque[str]] = {}  # thread -> runs of this worker, in order
        self._running: dict[str, RunJob] = {}  # thread -> the job running it
        self._known: set[str] = set()  # run ids queued or running here
        self._stopping = threading.Event()
        self._beat: threading.Thread | None = None
        self.listeners: list[Callable[[str], None]] = []
        self._pending_events: set[_Events] = set()
        self._flush_wake = threading.Event()
        self._flusher: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Announce this worker, take over the runs of dead workers, start the heartbeat."""
        self.store.heartbeat(self.id, self.owner.host, self.owner.started)
        self.sweep()
        self._beat = threading.Thread(target=self._heartbeat, name="graphflow-serve-heartbeat",
                                      daemon=True)
        self._beat.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Shut down: running runs stop at their next step boundary and stay ``running``; this
        worker's record is removed, so the next server to start (or another process sharing
        the database, at its next heartbeat) resumes them where they stopped."""
        self._stopping.set()
        with self._lock:
            jobs = list(self._running.values())
        log.warning("stopping worker %s: %d running run(s) stop at their next step and resume "
                    "when a server starts again", self.id, len(jobs))
        for job in jobs:
            job.cancel.set()
        deadline = time.monotonic() + timeout
        for job in jobs:
            while job.thread_id in self._running and time.monotonic() < deadline:
                time.sleep(0.01)
        self.executor.shutdown()
        if self._beat is not None:
            self._beat.join(timeout=5)
        with contextlib.suppress(Exception):
            self.store.forget_worker(self.id)

    def flush_soon(self, events: _Events) -> None:
        """Store ``events``' buffer within a moment (the flusher thread does it)."""
        with self._lock:
            self._pending_events.add(events)
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_loop, daemon=True,
                                                 name="graphflow-serve-events")
                self._flusher.start()
        self._flush_wake.set()

    def _flush_loop(self) -> None:
        while True:
            self._flush_wake.wait()
            self._flush_wake.clear()
            time.sleep(_BATCH_SECONDS)
            with self._lock:
                batch, self._pending_events = self._pending_events, set()
            for events in batch:
                try:
                    events.flush()
                except Exception:  # the run's own final flush stores them, or says why
                    log.exception("storing events of run %s failed", events.run_id)

    def notify(self, run_id: str) -> None:
        for listener in self.listeners:
            listener(run_id)

    @property
    def queued(self) -> int:
        """Runs waiting in this worker (not yet started)."""
        with self._lock:
            return sum(len(q) for q in self._queues.values())

    # -- scheduling ------------------------------------------------------------------------------

    def submit(self, run_id: str, thread_id: str) -> None:
        """Queue a run of this worker behind the earlier runs of its thread."""
        with self._lock:
            if run_id in self._known or self._stopping.is_set():
                return
            self._known.add(run_id)
            self._queues.setdefault(thread_id, deque()).append(run_id)
        self._pump(thread_id)

    def _pump(self, thread_id: str) -> None:
        with self._lock:
            if thread_id in self._running or self._stopping.is_set():
                return
            queue = self._queues.get(thread_id)
            if not queue:
                self._queues.pop(thread_id, None)
                return
            job = RunJob(self, queue.popleft(), thread_id)
            self._running[thread_id] = job
        self.executor.submit(job)

    def job_done(self, job: RunJob) -> None:
        with self._lock:
            self._running.pop(job.thread_id, None)
            self._known.discard(job.run_id)
        self.notify(job.run_id)
        self._pump(job.thread_id)

    def cancel(self, run_id: str) -> None:
        """Stop a run executing here at its next step boundary (the request is stored); its
        stream says when the cancel took hold."""
        with self._lock:
            jobs = [job for job in self._running.values() if job.run_id == run_id]
        for job in jobs:
            if not job.cancel.is_set():
                job.cancel.set()
                if job.events is not None:
                    job.events.add("metadata", {"run_id": run_id, "cancelling": True,
                                                "message": "the run stops at its next step "
                                                           "boundary"})

    # -- one run ---------------------------------------------------------------------------------

    def execute(self, job: RunJob) -> None:
        rec = self.store.get_run(job.run_id)
        if rec is None or rec.finished or rec.worker != self.id:
            return
        graph = self.graphs.get(rec.graph)
        if graph is None:
            self._finish(rec, "error", error={
                "type": "UnknownGraph", "message": f"this server has no graph {rec.graph!r} "
                f"(run {rec.run_id} was made by a server that had it)"})
            return
        saver = graph.checkpointer
        head = saver.get(rec.thread_id)
        if not self.store.start_run(rec.run_id, self.id, head.id if head else None):
            return  # cancelled while queued, or another worker's now
        resumed = rec.attempts > 0
        events = job.events = _Events(self, rec.run_id)
        events.add("metadata", {"run_id": rec.run_id, "thread_id": rec.thread_id,
                                "attempt": rec.attempts + 1, "resumed": resumed})
        progressed = resumed and head is not None and head.id != rec.base_checkpoint
        if progressed and graph.get_state(rec.thread_id).interrupts:
            # it paused on an interrupt before its server died: it ended there
            self._outcome(rec, graph, events, None)
            return
        if rec.cancel_requested:
            self.cancel(rec.run_id)
        if progressed:
            payload: Any = None  # continue from the last checkpoint it stored
        elif rec.command is not None:
            payload = Command(resume=rec.command.get("resume"))
        else:
            payload = rec.input
        before = (head.metadata.get("usage") if head else None) or {}
        if resumed and rec.base_checkpoint is not None:
            base = saver.get(rec.thread_id, rec.base_checkpoint)
            before = (base.metadata.get("usage") if base else None) or {}
        error: BaseException | None = None
        try:
            opts = rec.options
            for mode, data in graph.stream(
                    payload, mode=_modes(rec.stream_modes), thread=rec.thread_id,
                    cancel=job.cancel, recursion_limit=opts.get("recursion_limit"),
                    token_budget=opts.get("token_budget"),
                    wait=saver.lease_ttl * 1.5 if resumed else False):
                if mode == "messages":
                    chunk, node = data
                    data = (chunk, {"node": node})
                events.add(mode, data)
        except BaseException as exc:
            error = exc
        finally:
            events.flush()
        if isinstance(error, RunCancelledError) and self._stopping.is_set() \
                and not self._cancel_requested(rec.run_id):
            # the server is shutting down: the run stays active, for the next server
            events.add("metadata", {"run_id": rec.run_id, "paused": "the server stopped; "
                                    "the run resumes when a server starts again"}, flush=True)
            return
        if error is not None and not isinstance(error, Exception):
            raise error  # KeyboardInterrupt and the like
        self._outcome(rec, graph, events, error, before)

    def _cancel_requested(self, run_id: str) -> bool:
        rec = self.store.get_run(run_id)
        return bool(rec and rec.cancel_requested)

    def _outcome(self, rec: RunRecord, graph: CompiledGraph, events: _Events,
                 error: BaseException | None, before: dict[str, Any] | None = None) -> None:
        """Record how the run ended: status, output (the thread's state), usage, error."""
        output: dict[str, Any] | None = None
        usage: dict[str, Any] | None = None
        try:
            snap = graph.get_state(rec.thread_id)
        except Exception as exc:  # the state cannot be read back: say so, keep the run's end
            snap = None
            if error is None:
                error = exc
        if snap is not None:
            output = {"values": jsonable(snap.values), "next": list(snap.next),
                      "interrupts": jsonable(list(snap.interrupts)),
                      "checkpoint_id": snap.checkpoint_id, "step": snap.step}
            after = snap.metadata.get("usage") or {}
            base = before or {}
            usage = {k: after.get(k, 0) - base.get(k, 0)
                     for k in ("input_tokens", "output_tokens", "cost")}
            usage["thread_total"] = {k: after.get(k, 0)
                                     for k in ("input_tokens", "output_tokens", "cost")}
        if isinstance(error, RunCancelledError):
            status = "cancelled"
        elif error is not None:  # ThreadBusyError (a writer outside the server) included
            status = "error"
        elif snap is not None and snap.next:
            status = "interrupted"
        else:
            status = "success"
        self._finish(rec, status, output=output, usage=usage,
                     error=None if error is None or status == "cancelled"
                     else error_record(error), events=events)

    def _finish(self, rec: RunRecord, status: str, *, output: Any = None,
                error: dict[str, Any] | None = None, usage: dict[str, Any] | None = None,
                events: _Events | None = None) -> None:
        events = events or _Events(self, rec.run_id)
        if error is not None:
            events.add("error", error, flush=False)
        if self.store.finish_run(rec.run_id, self.id, status, output=output, error=error,
                                 usage=usage):
            events.add("end", {"run_id": rec.run_id, "status": status, "error": error,
                               "usage": usage}, flush=False)
        events.flush()

    # -- the heartbeat ---------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        every = self.config.heartbeat
        while not self._stopping.wait(every):
            try:
                self.store.heartbeat(self.id, self.owner.host, self.owner.started)
                self.sweep()
            except Exception:  # a lost database connection: try again next beat
                log.exception("heartbeat of worker %s failed", self.id)

    def sweep(self) -> None:
        """Pass on cancel requests, start runs queued here by other processes, and take over
        the active runs of dead workers."""
        for run_id, thread_id, _status, cancel in self.store.my_runs(self.id):
            if cancel:
                self.cancel(run_id)
            with self._lock:
                known = run_id in self._known
            if not known:
                self.submit(run_id, thread_id)
        for worker, host, started, pid, silent in self.store.owners():
            if worker == self.id or not self._dead(host, started, pid, silent):
                continue
            claimed = self.store.claim(worker, self.id)
            for run_id in claimed:
                self._take_over(run_id)

    def _dead(self, host: str, started: str, pid: int, silent: float) -> bool:
        if silent > self.config.worker_ttl:
            return True
        return Holder(Owner("", host, pid, started), 0.0, 0.0).is_dead()

    def _take_over(self, run_id: str) -> None:
        rec = self.store.get_run(run_id)
        if rec is None or rec.finished:
            return
        if self.config.on_restart == "resume" or rec.status == "pending":  # never started
            log.info("resuming run %s of thread %s (its server stopped)", run_id, rec.thread_id)
            self.submit(run_id, rec.thread_id)
            return
        self._finish(rec, "error", error={
            "type": "ServerStopped",
            "message": f"the server running run {run_id} stopped before it ended; the thread "
                       f"keeps every step it finished: continue it with a new run whose input "
                       f"is null (POST /threads/{rec.thread_id}/runs)"})

