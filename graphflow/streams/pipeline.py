"""The pipeline runtime: steps on an asyncio loop, bounded concurrency per step, batches, error
policies and ordered commits.

A :class:`Pipeline` is a list of steps. Consecutive steps run in one *segment*, connected by
bounded in-process queues (backpressure: a slow step slows the ones before it); a step with an
``output`` topic and the next one reading it (``input``) are in different segments, which may
run in different processes (:meth:`Pipeline.run` with ``steps=``). A segment starts at a source
(a source step, or a consumer of its first step's input topic) and ends at a sink (a sink step,
a producer of its last step's output topic, or nothing).

**Batches.** A step gets at most ``batch_size`` records per call: larger batches are split,
smaller ones waiting for it are merged, and a source's small reads are gathered for up to
``linger`` seconds. A step's outputs leave it in the order of its inputs, whatever its
``concurrency``. A batch travels as its records and, beside them, what each derives from, so a
step that maps a record to one record costs the runtime no work per record.

**Ordered commits.** The source records read together (a batch) are tracked with the number of
records derived from them still in flight. A processor's outputs count for their input's batch;
the sink's commit (its commit callback, or the end of ``write``), a skip and a dead-letter write
each settle one. A batch's source records are committed (``source.commit``, a topic
acknowledgement) once it and every batch read before it are settled, in read order: a crash
loses nothing that was read (it is read again: at-least-once).

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
import operator
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
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
        concurrency: batches this step handles at once (their outputs still leave in order).
        batch_size: the most records per call: larger batches are split, smaller ones merged
            with what is already waiting for the step.
        linger: a source's read smaller than ``batch_size`` waits up to this many seconds for
            more reads to fill the batch (0: hand each read on at once).
        config: passed to the agent's ``init(config)``.
    """

    agent: Any
    name: str = ""
    input: str | None = None
    output: str | None = None
    errors: ErrorPolicy | dict[str, Any] | None = None
    concurrency: int = 1
    batch_size: int = 1000
    linger: float = 0.005
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
        if not self.linger >= 0:
            raise ValueError(f"step {self.name!r}: linger must be >= 0 seconds, not "
                             f"{self.linger!r}")


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


# A batch travels between steps as two parallel lists: its records and, for each, the entry
# of the source records it derives from (so the runtime does no work per record when a step
# maps each record to one record).
_Batch = tuple[list[Record], list["_Entry"]]
_RECORD = frozenset({Record})
_LIST = frozenset({list})
_TUPLE = frozenset({tuple})
_first = operator.itemgetter(0)
_second = operator.itemgetter(1)
_is_two = (2).__eq__
_flatten = chain.from_iterable


class _Entry:
    """Source records read together, and how many records derived from them are in flight."""

    __slots__ = ("done", "pending", "records")

    def __init__(self, records: list[Record]) -> None:
        self.records = records
        self.pending = len(records)
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

    def add(self, records: list[Record]) -> _Entry:
        entry = _Entry(records)
        self.order.append(entry)
        return entry

    def adjust(self, entry: _Entry, delta: int) -> None:
        """``delta`` more (or, negative, fewer) records derived from ``entry`` in flight."""
        entry.pending += delta
        if entry.pending > 0:
            return
        entry.done = True
        order = self.order
        while order and order[0].done:
            self.ready.extend(order.popleft().records)
        if self.ready:
            self.wake.set()

    def settle(self, owners: list[_Entry]) -> None:
        """One record of each of ``owners`` is done (written and committed, or given up)."""
        first = owners[0]
        if owners.count(first) == len(owners):
            self.adjust(first, -len(owners))
        else:
            for entry, n in Counter(owners).items():
                self.adjust(entry, -n)

    async def flush(self) -> None:
        """Commit what is ready, in read order (one task does it: the order holds)."""
        while self.ready:
            batch, self.ready = self.ready, []
            if callable(self.commit_fn):
                await _call(self.commit_fn, batch)
            self.stats["committed"] += len(batch)


class _Inbox:
    """A step's input: batches from a bounded queue (backpressure), handed out at most
    ``size`` records at a time, merged from what is already queued, split when larger."""

    def __init__(self, size: int, maxsize: int) -> None:
        self.size = size
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=maxsize)
        self.put = self.queue.put
        self.carry: _Batch | None = None  # the rest of a split batch, handed out next
        self.ended = False

    def _ended(self) -> None:
        self.ended = True
        self.queue.put_nowait(_END)  # wakes another worker of the step waiting here

    async def take(self) -> _Batch | None:
        """The next batch, or None when the input has ended."""
        batch, self.carry = self.carry, None
        if batch is None:
            if self.ended:
                return None
            item = await self.queue.get()
            batch, self.carry = self.carry, None  # (set by another worker meanwhile)
            if item is _END:
                self._ended()
                if batch is None:
                    return None
            elif batch is None:
                batch = item
            else:
                batch = (batch[0] + item[0], batch[1] + item[1])
        records, owners = batch
        size, queue = self.size, self.queue
        if len(records) < size and not self.ended and not queue.empty():
            records, owners = list(records), list(owners)
            while len(records) < size and not queue.empty():
                item = queue.get_nowait()
                if item is _END:
                    self._ended()
                    break
                records += item[0]
                owners += item[1]
        if len(records) > size:
            self.carry = (records[size:], owners[size:])
            records, owners = records[:size], owners[:size]
        return records, owners


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
        else:  # a topic read returns what is there up to batch_size at once: no linger
            source_step = Step(TopicSource(topics, first.input or "", f"{p.name}.{first.name}",
                                           batch=first.batch_size), name=f"{first.name}:input",
                               batch_size=first.batch_size, linger=0.0)
        sink_step: Step | None = None
        if steps and steps[-1].kind == "sink":
            sink_step = steps.pop()
        elif last.output:
            sink_step = Step(TopicSink(topics, last.output), name=f"{last.name}:output",
                             batch_size=last.batch_size)
        stats = p.stats
        tracker = _Tracker(source_step.agent, stats)
        inboxes = [_Inbox(s.batch_size, s.concurrency * 2) for s in steps]
        sink_inbox = (_Inbox(sink_step.batch_size, sink_step.concurrency * 2) if sink_step
                      else _Inbox(1 << 30, 2))
        outs = [*inboxes[1:], sink_inbox]
        tasks = [asyncio.ensure_future(self._read(source_step, tracker,
                                                  inboxes[0] if inboxes else sink_inbox, stop))]
        for i, step in enumerate(steps):
            tasks.append(asyncio.ensure_future(
                self._workers(step, inboxes[i], outs[i], tracker, self._processor(step))))
        tasks.append(asyncio.ensure_future(self._drain(sink_step, sink_inbox, tracker)))
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

    async def _read(self, step: Step, tracker: _Tracker, out: _Inbox,
                    stop: threading.Event | None) -> None:
        read = step.agent.read
        size, linger = step.batch_size, step.linger
        where = f"step {step.name!r}"
        loop = asyncio.get_running_loop()
        pause = 0.001
        p = self.pipeline
        stats = p.stats
        # a topic written by a segment of this run ends when that segment has ended and the
        # topic is drained (a topic fed from elsewhere is read until stopped)
        topic = step.agent.topic if isinstance(step.agent, TopicSource) else None
        internal = topic is not None and topic in p._feeding
        held: list[Record] = []  # read, waiting up to `linger` for more to fill a batch
        since = 0.0

        async def emit() -> None:
            nonlocal held
            batch, held = held, []
            for i in range(0, len(batch), size):
                chunk = batch[i:i + size]
                await out.put((list(chunk), [tracker.add(chunk)] * len(chunk)))

        try:
            while not (stop is not None and stop.is_set()) and not p._stopping:
                fed = internal and p._feeding.get(topic or "", 0) > 0
                got = await self._with_retries(step, lambda: _call(read))
                if got is None:
                    return
                if got:
                    pause = 0.001
                    records = got if (type(got) is list and _RECORD.issuperset(map(type, got))
                                      ) else [to_record(r, where) for r in got]
                    stats["read"] += len(records)
                    if not held:
                        since = loop.time()
                    held += records
                    if len(held) >= size or loop.time() - since >= linger:
                        await emit()
                    continue  # more may be there at once
                if held:  # nothing now: wait for more until the linger is over
                    left = since + linger - loop.time()
                    if left <= 0:
                        await emit()
                    else:
                        await asyncio.sleep(min(pause, left))
                        pause = min(pause * 2, 0.05)
                    continue
                if internal and not fed:
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.05)
        finally:
            if held:
                await emit()
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

    async def _workers(self, step: Step, inbox: _Inbox, out: _Inbox, tracker: _Tracker,
                       process: Callable[[list[Record]], Any]) -> None:
        """``concurrency`` workers; each batch's output leaves in the order the batches came."""
        loop = asyncio.get_running_loop()
        turn: list[asyncio.Future[None] | None] = [None]  # set when the last batch taken left

        async def work() -> None:
            while (batch := await inbox.take()) is not None:
                before, mine = turn[0], loop.create_future()
                turn[0] = mine
                try:
                    records, owners = await self._process(step, batch, tracker, process)
                    if before is not None:
                        await before
                    if records:
                        await out.put((records, owners))
                finally:
                    mine.set_result(None)

        try:
            await _gather_or_fail([asyncio.ensure_future(work())
                                   for _ in range(step.concurrency)])
        finally:
            await out.put(_END)

    async def _process(self, step: Step, batch: _Batch, tracker: _Tracker,
                       process: Callable[[list[Record]], Any]) -> _Batch:
        records, owners = batch
        policy: ErrorPolicy = step.errors  # type: ignore[assignment]
        outs: list[Any] = []  # for each record, what it became or the exception it raised
        todo, at = records, range(len(records))
        attempt = 0
        while True:
            try:
                results = await process(list(todo))  # (a list of its own: it may change it)
            except Exception as exc:
                results = [(r, exc) for r in todo]
            got = _outputs(step, todo, results)
            if todo is records:
                outs = got
            else:
                for i, res in zip(at, got, strict=True):
                    outs[i] = res
            if _LIST.issuperset(map(type, got)):
                break
            at = [i for i in at if isinstance(outs[i], BaseException)]
            if attempt >= policy.retries:
                break
            await asyncio.sleep(min(policy.backoff * 2 ** attempt, policy.max_backoff))
            attempt += 1
            todo = [records[i] for i in at]
        failed = [] if _LIST.issuperset(map(type, outs)) else [
            i for i, res in enumerate(outs) if isinstance(res, BaseException)]
        if failed:
            given_up = [(records[i], outs[i], owners[i]) for i in failed]
            for i in failed:
                outs[i] = []
        flat = list(_flatten(outs))
        lens = list(map(len, outs))
        if len(flat) == len(records) and min(lens) == 1:
            new_owners = owners  # one record each: nothing to count
        else:
            new_owners = list(_flatten(map(repeat, owners, lens)))
            delta = Counter(new_owners)
            if failed:  # in flight until given up
                delta.update(owners[i] for i in failed)
            delta.subtract(Counter(owners))
            for entry, n in delta.items():
                if n:
                    tracker.adjust(entry, n)
        if flat and not _RECORD.issuperset(map(type, flat)):
            where = f"step {step.name!r}"
            flat = [to_record(x, where) for x in flat]
        if failed:
            for record, exc, entry in given_up:
                await self._give_up(step, record, exc, tracker, entry)
        return flat, new_owners

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
        tracker.adjust(entry, -1)

    async def _drain(self, step: Step | None, inbox: _Inbox, tracker: _Tracker) -> None:
        if step is None:  # no sink: what reaches the end is done
            while (batch := await inbox.take()) is not None:
                tracker.settle(batch[1])
            return
        agent = step.agent
        loop = asyncio.get_running_loop()
        inflight: dict[int, list[Any]] = {}  # id(record) -> [record, its entry, ...]
        stats = self.pipeline.stats
        callback = getattr(agent, "set_commit_callback", None)
        late = callable(callback)  # the sink reports commits itself, maybe later

        def committed(records: list[Record]) -> None:
            def settle() -> None:
                owners = []
                for r in records:
                    slot = inflight.get(id(r))
                    if slot is not None:
                        owners.append(slot.pop())
                        if len(slot) == 1:
                            del inflight[id(r)]
                if owners:
                    stats["written"] += len(owners)
                    tracker.settle(owners)
            if threading.get_ident() == loop_thread:
                settle()
            else:
                loop.call_soon_threadsafe(settle)

        loop_thread = threading.get_ident()
        if late:
            callback(_Callback(committed))  # type: ignore[misc]

        async def work() -> None:
            while (batch := await inbox.take()) is not None:
                records, owners = batch
                if late:
                    for r, e in zip(records, owners, strict=True):
                        slot = inflight.get(id(r))
                        if slot is None:
                            inflight[id(r)] = [r, e]
                        else:  # the same record object twice
                            slot.append(e)
                try:
                    await self._with_retries(step, lambda r=records: _call(agent.write, r))
                except PipelineError as exc:
                    policy: ErrorPolicy = step.errors  # type: ignore[assignment]
                    if policy.on_failure == "fail":
                        raise
                    for r, e in zip(records, owners, strict=True):
                        slot = inflight.pop(id(r), None)
                        if slot is not None and len(slot) > 2:
                            slot.remove(e)
                            inflight[id(r)] = slot
                        await self._give_up(step, r, exc.__cause__ or exc, tracker, e)
                    continue
                if not late:
                    stats["written"] += len(records)
                    tracker.settle(owners)

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


def _outputs(step: Step, todo: list[Record], results: Any) -> list[Any]:
    """A processor's results for ``todo``, in its order: for each record, the list of what it
    became (records or anything :func:`to_record` reads) or the exception it raised.

    Results are matched to their inputs by identity, else by position."""
    results = results if type(results) is list else list(results or ())
    if len(results) != len(todo):
        raise PipelineError(step.name, f"process() returned {len(results)} results for "
                                       f"{len(todo)} records; return one (record, result) "
                                       f"pair per input record")
    if (_TUPLE.issuperset(map(type, results)) and all(map(_is_two, map(len, results)))
            and all(map(operator.is_, map(_first, results), todo))):
        got = list(map(_second, results))  # the usual shape: pairs in input order
    else:
        by_id = {id(r): i for i, r in enumerate(todo)}
        got = [None] * len(todo)
        for i, item in enumerate(results):
            if not (isinstance(item, tuple) and len(item) == 2):
                raise PipelineError(step.name, f"process() result #{i} is {item!r:.60}, not a "
                                               f"(record, outputs or exception) pair")
            got[by_id.get(id(item[0]), i)] = item[1]
    if _LIST.issuperset(map(type, got)):
        return got
    return [res if isinstance(res, (list, BaseException)) else list(res or ()) for res in got]


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
