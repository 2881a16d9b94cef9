"""The pipeline runtime: steps on an asyncio loop, bounded concurrency per step, batches, error
policies and ordered commits.

A :class:`Pipeline` is a list of steps. Consecutive steps run in one *segment*, connected by
bounded in-process queues (backpressure: a slow step slows the ones before it); a step with an
``output`` topic and the next one reading it (``input``) are in different segments, which may
run in different processes (:meth:`Pipeline.run` with ``steps=``). A segment starts at a source
(a source step, or a consumer of its first step's input topic) and ends at a sink (a sink step,
a producer of its last step's output topic, or nothing).

**Ordered commits.** Every record read is tracked with the number of records derived from it
still in flight. A processor's outputs inherit their input's entry; the sink's commit (its
commit callback, or the end of ``write``), a skip and a dead-letter write each settle one. A
source record is committed (``source.commit``, a topic acknowledgement) once it and every record
read before it are settled, in read order: a crash loses nothing that was read (it is read again:
at-least-once).

**Errors** (per step, LangStream's spec): ``retries`` with exponential backoff, then
``on-failure``: ``skip`` (settled, not written), ``dead-letter`` (the input record written to a
topic — ``dead-letter-topic``, default ``<input topic>-deadletter`` — with ``error-msg``,
``error-class`` and ``error-step`` headers, then settled) or ``fail`` (the pipeline stops with
:class:`PipelineError`; nothing unsettled is committed).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import GraphflowError
from .record import Record, to_record
from .topics import MemoryTopics, TopicSink, TopicSource

__all__ = ["ErrorPolicy", "Pipeline", "PipelineError", "Step"]

_END = object()


class PipelineError(GraphflowError):
    """A step failed under its ``on-failure: fail`` policy (or a source/sink broke); the
    pipeline stopped. ``step`` names it; ``__cause__`` is the error."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"step {step!r}: {message}")
        self.step = step


@dataclass(frozen=True)
class ErrorPolicy:
    """What a step does with a record it cannot handle (see the module docstring)."""

    retries: int = 0
    on_failure: str = "fail"
    dead_letter_topic: str | None = None
    backoff: float = 0.05
    max_backoff: float = 5.0

    def __post_init__(self) -> None:
        if self.on_failure not in ("fail", "skip", "dead-letter"):
            raise ValueError(f"on-failure must be fail, skip or dead-letter, not "
                             f"{self.on_failure!r}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, not {self.retries}")

    @classmethod
    def of(cls, spec: ErrorPolicy | dict[str, Any] | None) -> ErrorPolicy:
        """From a policy, or a pipeline file's ``errors:`` mapping (kebab or snake case)."""
        if spec is None or isinstance(spec, ErrorPolicy):
            return spec or cls()
        keys = {k.replace("-", "_"): v for k, v in spec.items()}
        unknown = set(keys) - {"retries", "on_failure", "dead_letter_topic", "backoff",
                               "max_backoff"}
        if unknown:
            raise ValueError(f"unknown errors setting(s) {sorted(unknown)}")
        return cls(**keys)


@dataclass
class Step:
    """A pipeline step: an agent and how it runs.

    Args:
        agent: a source, processor or sink (anything with ``read``, ``process`` /
            ``process_record``, or ``write``), or a compiled graph (made a processor).
        name: the step's name (in errors, dead-letter headers and consumer groups).
        input: read this topic (a step after a step with the same ``output`` reads it).
        output: write to this topic.
        errors: an :class:`ErrorPolicy` or its mapping.
        concurrency: batches this step handles at once.
        batch_size: the most records per call (larger batches are split).
        config: passed to the agent's ``init(config)``.
    """

    agent: Any
    name: str = ""
    input: str | None = None
    output: str | None = None
    errors: ErrorPolicy | dict[str, Any] | None = None
    concurrency: int = 1
    batch_size: int = 1000
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from ..engine.compiled import CompiledGraph

        if isinstance(self.agent, CompiledGraph):
            from .graph import graph_processor

            self.agent = graph_processor(self.agent)
        self.kind = _kind(self.agent)
        self.name = self.name or type(self.agent).__name__
        self.errors = ErrorPolicy.of(self.errors)
        if self.concurrency < 1 or self.batch_size < 1:
            raise ValueError(f"step {self.name!r}: concurrency and batch_size must be >= 1")


def _kind(agent: Any) -> str:
    if callable(getattr(agent, "read", None)):
        return "source"
    if callable(getattr(agent, "process", None)) or callable(
            getattr(agent, "process_record", None)):
        return "processor"
    if callable(getattr(agent, "write", None)):
        return "sink"
    raise TypeError(f"{agent!r} is not a pipeline agent: a source has read(), a processor "
                    f"process() or process_record(), a sink write()")


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Await an async method; run a sync one in a worker thread (it may block)."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args)
    out = await asyncio.to_thread(fn, *args)
    return await out if inspect.isawaitable(out) else out


class _Entry:
    __slots__ = ("done", "pending", "record")

    def __init__(self, record: Record) -> None:
        self.record = record
        self.pending = 1
        self.done = False


class _Tracker:
    """Read order and settlement of one segment's source records (see the module docstring)."""

    def __init__(self, source: Any, stats: dict[str, int]) -> None:
        self.source = source
        self.commit_fn = getattr(source, "commit", None)
        self.order: deque[_Entry] = deque()
        self.ready: list[Record] = []
        self.stats = stats
        self.wake = asyncio.Event()
        self.closing = False

    def add(self, records: list[Record]) -> list[tuple[Record, _Entry]]:
        out = []
        for r in records:
            e = _Entry(r)
            self.order.append(e)
            out.append((r, e))
        return out

    def settle(self, entry: _Entry, n: int = 1) -> None:
        entry.pending -= n
        if entry.pending > 0:
            return
        entry.done = True
        order = self.order
        while order and order[0].done:
            self.ready.append(order.popleft().record)
        if self.ready:
            self.wake.set()

    def idle(self) -> bool:
        return not self.order and not self.ready

    async def flush(self) -> None:
        """Commit what is ready, in read order (one task does it: the order holds)."""
        while self.ready:
            batch, self.ready = self.ready, []
            if callable(self.commit_fn):
                await _call(self.commit_fn, batch)
            self.stats["committed"] += len(batch)


class _Segment:
    """Steps connected in-process, from a source to a sink."""

    def __init__(self, pipeline: Pipeline, steps: list[Step]) -> None:
        self.pipeline = pipeline
        self.steps = steps

    async def run(self, stop: threading.Event | None) -> None:
        p = self.pipeline
        topics = p.topics
        steps = list(self.steps)
        first, last = steps[0], steps[-1]
        if first.kind == "source":
            source_step = steps.pop(0)
        else:
            source_step = Step(TopicSource(topics, first.input or "", f"{p.name}.{first.name}",
                                           batch=first.batch_size), name=f"{first.name}:input")
        sink_step: Step | None = None
        if steps and steps[-1].kind == "sink":
            sink_step = steps.pop()
        elif last.output:
            sink_step = Step(TopicSink(topics, last.output), name=f"{last.name}:output")
        stats = p.stats
        tracker = _Tracker(source_step.agent, stats)
        queues = [asyncio.Queue(maxsize=max(s.concurrency, 1) * 2) for s in steps]
        sink_queue: asyncio.Queue[Any] = asyncio.Queue(
            maxsize=(sink_step.concurrency * 2) if sink_step else 2)
        outs = [*queues[1:], sink_queue]
        tasks = [asyncio.ensure_future(self._read(source_step, tracker,
                                                  queues[0] if queues else sink_queue, stop))]
        for i, step in enumerate(steps):
            tasks.append(asyncio.ensure_future(
                self._workers(step, queues[i], outs[i], tracker, self._processor(step))))
        tasks.append(asyncio.ensure_future(self._drain(sink_step, sink_queue, tracker)))
        committer = asyncio.ensure_future(self._committer(tracker))
        try:
            await _gather_or_fail(tasks)
        finally:  # the committer finishes the commit it is making, then what is ready
            tracker.closing = True
            tracker.wake.set()
            with contextlib.suppress(asyncio.CancelledError):
                await committer
            if last.output:
                p._feeding[last.output] -= 1

    # -- stages --------------------------------------------------------------------------

    async def _read(self, step: Step, tracker: _Tracker, out: asyncio.Queue[Any],
                    stop: threading.Event | None) -> None:
        read = step.agent.read
        pause = 0.001
        p = self.pipeline
        stats = p.stats
        # a topic written by a segment of this run ends when that segment has ended and the
        # topic is drained (a topic fed from elsewhere is read until stopped)
        topic = step.agent.topic if isinstance(step.agent, TopicSource) else None
        internal = topic is not None and topic in p._feeding
        try:
            while not (stop is not None and stop.is_set()) and not p._stopping:
                fed = internal and p._feeding.get(topic or "", 0) > 0
                got = await self._with_retries(step, lambda: _call(read))
                if got is None:
                    return
                if not got and internal and not fed:
                    return
                if not got:
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 0.05)
                    continue
                pause = 0.001
                records = [to_record(r, f"step {step.name!r}") for r in got]
                stats["read"] += len(records)
                for i in range(0, len(records), step.batch_size):
                    await out.put(tracker.add(records[i:i + step.batch_size]))
        finally:
            await out.put(_END)

    def _processor(self, step: Step) -> Callable[[list[Record]], Any]:
        agent = step.agent
        if callable(getattr(agent, "process", None)):
            return lambda records: _call(agent.process, records)
        one = agent.process_record

        async def per_record(records: list[Record]) -> list[tuple[Record, Any]]:
            out: list[tuple[Record, Any]] = []
            for r in records:
                try:
                    out.append((r, await _call(one, r)))
                except Exception as exc:
                    out.append((r, exc))
            return out

        return per_record

    async def _workers(self, step: Step, inq: asyncio.Queue[Any], out: asyncio.Queue[Any],
                       tracker: _Tracker, process: Callable[[list[Record]], Any]) -> None:
        async def work() -> None:
            while True:
                batch = await inq.get()
                if batch is _END:
                    await inq.put(_END)  # the other workers see it too
                    return
                results = await self._process(step, batch, tracker, process)
                if results:
                    await out.put(results)

        try:
            await _gather_or_fail([asyncio.ensure_future(work())
                                   for _ in range(step.concurrency)])
        finally:
            await out.put(_END)

    async def _process(self, step: Step, batch: list[tuple[Record, _Entry]], tracker: _Tracker,
                       process: Callable[[list[Record]], Any]) -> list[tuple[Record, _Entry]]:
        entries = {id(r): e for r, e in batch}
        todo = [r for r, _ in batch]
        done: dict[int, list[Any]] = {}
        policy: ErrorPolicy = step.errors  # type: ignore[assignment]
        attempt = 0
        while todo:
            try:
                results = await process(todo)
            except Exception as exc:
                results = [(r, exc) for r in todo]
            failed: list[tuple[Record, BaseException]] = []
            for r, res in _pair(step, todo, results):
                if isinstance(res, BaseException):
                    failed.append((r, res))
                else:
                    done[id(r)] = [to_record(x, f"step {step.name!r}") for x in res or ()]
            if not failed:
                break
            if attempt >= policy.retries:
                for r, exc in failed:
                    await self._give_up(step, r, exc, tracker, entries[id(r)])
                break
            await asyncio.sleep(min(policy.backoff * 2 ** attempt, policy.max_backoff))
            attempt += 1
            todo = [r for r, _ in failed]
        out: list[tuple[Record, _Entry]] = []
        for r, e in batch:
            produced = done.get(id(r))
            if produced is None:
                continue
            if produced:
                e.pending += len(produced) - 1
                out.extend((x, e) for x in produced)
            else:
                tracker.settle(e)  # filtered out: nothing to write
        return out

    async def _give_up(self, step: Step, record: Record, exc: BaseException, tracker: _Tracker,
                       entry: _Entry) -> None:
        policy: ErrorPolicy = step.errors  # type: ignore[assignment]
        stats = self.pipeline.stats
        if policy.on_failure == "skip":
            stats["skipped"] += 1
        elif policy.on_failure == "dead-letter":
            topic = policy.dead_letter_topic or f"{step.input or step.name}-deadletter"
            failed = Record(record.value(), record.key(), record.origin(), record.timestamp(),
                            [*record.headers(), ("error-msg", str(exc)),
                             ("error-class", type(exc).__name__), ("error-step", step.name)])
            await self.pipeline.topics.producer(topic).write([failed])
            stats["dead_lettered"] += 1
        else:
            raise PipelineError(step.name, f"{type(exc).__name__}: {exc} (record key "
                                           f"{record.key()!r})") from exc
        tracker.settle(entry)

    async def _drain(self, step: Step | None, inq: asyncio.Queue[Any],
                     tracker: _Tracker) -> None:
        if step is None:  # no sink: what reaches the end is done
            while (batch := await inq.get()) is not _END:
                for _, e in batch:
                    tracker.settle(e)
            return
        agent = step.agent
        loop = asyncio.get_running_loop()
        inflight: dict[int, _Entry] = {}
        stats = self.pipeline.stats
        callback = getattr(agent, "set_commit_callback", None)

        def committed(records: list[Record]) -> None:
            def settle() -> None:
                for r in records:
                    e = inflight.pop(id(r), None)
                    if e is not None:
                        stats["written"] += 1
                        tracker.settle(e)
            if threading.get_ident() == loop_thread:
                settle()
            else:
                loop.call_soon_threadsafe(settle)

        loop_thread = threading.get_ident()
        if callable(callback):
            callback(_Callback(committed))

        async def work() -> None:
            while True:
                batch = await inq.get()
                if batch is _END:
                    await inq.put(_END)
                    return
                records = [r for r, _ in batch]
                for r, e in batch:
                    inflight[id(r)] = e
                try:
                    await self._with_retries(step, lambda r=records: _call(agent.write, r))
                except PipelineError as exc:
                    policy: ErrorPolicy = step.errors  # type: ignore[assignment]
                    if policy.on_failure == "fail":
                        raise
                    for r, e in batch:
                        inflight.pop(id(r), None)
                        await self._give_up(step, r, exc.__cause__ or exc, tracker, e)
                    continue
                if not callable(callback):
                    committed(records)

        await _gather_or_fail([asyncio.ensure_future(work()) for _ in range(step.concurrency)])
        while inflight and not self.pipeline._stopping:  # the sink commits late: wait for it
            await asyncio.sleep(0.005)

    async def _with_retries(self, step: Step, call: Callable[[], Any]) -> Any:
        policy: ErrorPolicy = step.errors  # type: ignore[assignment]
        attempt = 0
        while True:
            try:
                return await call()
            except Exception as exc:
                if attempt >= policy.retries:
                    raise PipelineError(step.name, f"{type(exc).__name__}: {exc}") from exc
                await asyncio.sleep(min(policy.backoff * 2 ** attempt, policy.max_backoff))
                attempt += 1

    async def _committer(self, tracker: _Tracker) -> None:
        while not tracker.closing:
            await tracker.wake.wait()
            tracker.wake.clear()
            await tracker.flush()
        await tracker.flush()


class _Callback:
    __slots__ = ("commit",)

    def __init__(self, commit: Callable[[list[Record]], None]) -> None:
        self.commit = commit


def _pair(step: Step, todo: list[Record], results: Any) -> list[tuple[Record, Any]]:
    """A processor's results matched to its inputs (by identity, else by position)."""
    results = list(results or ())
    if len(results) != len(todo):
        raise PipelineError(step.name, f"process() returned {len(results)} results for "
                                       f"{len(todo)} records; return one (record, result) "
                                       f"pair per input record")
    by_id = {id(r): r for r in todo}
    out = []
    for i, item in enumerate(results):
        if not (isinstance(item, tuple) and len(item) == 2):
            raise PipelineError(step.name, f"process() result #{i} is {item!r:.60}, not a "
                                           f"(record, outputs or exception) pair")
        rec, res = item
        out.append((by_id.get(id(rec), todo[i]), res))
    return out


async def _gather_or_fail(tasks: list[asyncio.Future[Any]]) -> None:
    """Wait for every task; on the first failure cancel the others and raise it."""
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class Pipeline:
    """Steps from sources through processors to sinks (see the module docstring).

    Args:
        steps: :class:`Step` objects, or agents (each made a ``Step`` with defaults).
        topics: the topics backend (default: a new :class:`MemoryTopics`).
        name: names the consumer groups of its topic readers (``name.step``).
        errors: the default error policy of steps that set none.
    """

    def __init__(self, steps: Sequence[Any], *, topics: Any = None, name: str = "pipeline",
                 errors: ErrorPolicy | dict[str, Any] | None = None) -> None:
        default = ErrorPolicy.of(errors)
        self.steps = [s if isinstance(s, Step) else Step(s) for s in steps]
        if not self.steps:
            raise ValueError("a pipeline needs at least one step")
        for s in self.steps:
            if s.errors == ErrorPolicy() and default != ErrorPolicy():
                s.errors = default
        names = [s.name for s in self.steps]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"step names must differ: {dupes} (name them with Step(name=...))")
        self.topics = topics if topics is not None else MemoryTopics()
        self.name = name
        self.stats: dict[str, int] = {}
        self._stopping = False
        self._feeding: dict[str, int] = {}  # topic -> segments of this run writing it
        self.segments = self._segments()

    def _segments(self) -> list[list[Step]]:
        segments: list[list[Step]] = []
        prev: Step | None = None
        for s in self.steps:
            if prev is not None and s.input is None and s.kind != "source" and prev.output:
                s.input = prev.output  # the previous step's output topic feeds this one
            starts = prev is None or s.kind == "source" or s.input is not None
            if starts:
                if s.kind not in ("source",) and s.input is None:
                    raise ValueError(f"step {s.name!r} has nothing to read: put a source "
                                     f"before it or give it an input topic")
                segments.append([s])
            else:
                if prev is not None and prev.kind == "sink":
                    raise ValueError(f"step {s.name!r} follows the sink {prev.name!r}")
                segments[-1].append(s)
            prev = s
        for seg in segments:
            for s in seg[1:]:
                if s.kind == "source":
                    raise ValueError(f"step {s.name!r}: a source starts a segment")
            for s in seg[:-1]:
                if s.kind == "sink":
                    raise ValueError(f"step {s.name!r}: nothing may follow a sink in-process")
        return segments

    def run(self, *, steps: Sequence[str] | None = None,
            stop: threading.Event | None = None) -> dict[str, int]:
        """Run (the segments holding ``steps``, default all) until every source is exhausted
        or ``stop`` is set, then drain and commit; the counts of records read, written,
        committed, skipped and dead-lettered."""
        from ..engine.compiled import _run_blocking  # works inside a running loop (Jupyter) too

        return _run_blocking(lambda: self.arun(steps=steps, stop=stop))

    async def arun(self, *, steps: Sequence[str] | None = None,
                   stop: threading.Event | None = None) -> dict[str, int]:
        """Async :meth:`run`."""
        chosen = self.segments
        if steps is not None:
            unknown = set(steps) - {s.name for s in self.steps}
            if unknown:
                raise ValueError(f"no step(s) {sorted(unknown)} in this pipeline")
            chosen = [seg for seg in self.segments if any(s.name in steps for s in seg)]
        self.stats = {"read": 0, "written": 0, "committed": 0, "skipped": 0,
                      "dead_lettered": 0}
        self._stopping = False
        self._feeding = {}
        for seg in chosen:
            if seg[-1].output:
                self._feeding[seg[-1].output] = self._feeding.get(seg[-1].output, 0) + 1
        agents = [s.agent for seg in chosen for s in seg]
        for s in (s for seg in chosen for s in seg):
            init = getattr(s.agent, "init", None)
            if callable(init):
                await _call(init, s.config)
        for agent in agents:
            start = getattr(agent, "start", None)
            if callable(start):
                await _call(start)
        started = time.perf_counter()
        try:
            await _gather_or_fail([asyncio.ensure_future(_Segment(self, seg).run(stop))
                                   for seg in chosen])
        finally:
            self._stopping = True
            for agent in agents:
                close = getattr(agent, "close", None)
                if callable(close):
                    with contextlib.suppress(Exception):
                        await _call(close)
            with contextlib.suppress(Exception):
                await self.topics.close()
        self.stats["seconds"] = round(time.perf_counter() - started, 6)  # type: ignore[assignment]
        return dict(self.stats)

    def stop(self) -> None:
        """Stop reading (from any thread); what was read is drained and committed."""
        self._stopping = True
