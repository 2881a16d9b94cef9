"""One run of a compiled graph: the superstep state machine shared by the sync and async drivers.

Everything about a step's logic lives here, once: applying the input (or loading a thread to
resume), planning the next tasks (edges, joins, routers' results, ``Send`` and ``goto``), merging
writes in deterministic order, the recursion limit, breakpoints and interrupts, stream events and
checkpoints. The drivers (``sync_driver``, ``async_driver``) only decide *how* task bodies,
routers and checkpointer calls are made.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .. import tracing
from .._random import random_hex
from ..checkpoint.base import Checkpoint, Checkpointer, PendingWrite, new_checkpoint_id, now
from ..checkpoint.lease import Lease
from ..constants import END, START
from ..errors import (
    GraphflowError,
    GraphRecursionError,
    InvalidUpdateError,
    RunCancelledError,
    TokenBudgetExceeded,
)
from ..graph.managed import managed_values
from ..graph.nodes import Branch
from ..types import Command, Send
from .call import annotate
from .context import RunContext
from .ids import check_checkpoint_id, check_thread_id, make_task_id
from .interrupts import Interrupt
from .merge import apply_writes, items_of
from .task import Task, parent_commands

if TYPE_CHECKING:
    from .compiled import CompiledGraph

__all__ = ["DEFAULT_RECURSION_LIMIT", "INTERRUPT_KEY", "Run", "rebuild_values"]

DEFAULT_RECURSION_LIMIT = 10_000
STREAM_MODES = frozenset({"updates", "values", "custom", "debug", "messages", "tasks",
                           "checkpoints"})
INTERRUPT_KEY = "__interrupt__"  # a pending write holding a task's interrupts
ERROR_KEY = "__error__"  # a pending write saying the task's outcome was rejected: run it again
BREAKPOINT_TASK = "__breakpoint__"  # a pending write saying "paused before this step"


def rebuild_values(graph: CompiledGraph, chain: list[Checkpoint]) -> dict[str, Any]:
    """The state at ``chain[-1]``: the snapshot at ``chain[0]`` plus the later steps' writes."""
    schema = graph.schema
    first = chain[0]
    if first.values is None:
        raise GraphflowError(
            f"checkpoint {first.id!r} of thread {first.thread!r} has no snapshot to start from; "
            f"the store is inconsistent")
    unknown = [k for k in first.values if k not in schema.channels]
    if unknown:
        raise GraphflowError(
            f"thread {first.thread!r} holds key(s) {unknown} that the state "
            f"{schema.cls.__name__} no longer declares; add them back to the schema (or start "
            f"a new thread) so that no data is dropped silently")
    values = {**schema.defaults(), **first.values}  # keys added to the schema get defaults
    for cp in chain[1:]:
        values = apply_writes(schema, values, (((n, ((k, v),)) for n, k, v in cp.writes)))
    return values


def pending_interrupts(pending: dict[str, PendingWrite]) -> list[Interrupt]:
    """The interrupts recorded among a checkpoint's pending writes, in task order."""
    out: list[Interrupt] = []
    for task_id in sorted(pending):
        for key, value in pending[task_id].writes:
            if key == INTERRUPT_KEY:
                out.extend(value)
    return out


class Run:
    """The state of one invocation: values, due tasks, step counters, buffered events."""

    # Defaults every run starts with (immutable, so they live on the class: a subgraph's run is
    # made once per call, and each attribute set in __init__ costs it time).
    spans: list[Any] | None = None  # [run span, step span] while tracing is on
    lease: Lease | None = None  # held while the run writes its thread
    sink: Any = None  # set by a driver to deliver events live from worker threads
    log: list[tuple[str, Any]] | None = None  # (node, write) pairs when log_writes
    step = 0
    steps_run = 0
    checkpoint_id: str | None = None
    pending_checkpoint: Checkpoint | None = None
    parent: Run | None = None  # the run this one is a subgraph of
    mount: str | None = None  # the parent's node this run is the subgraph of
    path: tuple[str, ...] = ()  # names of the subgraph runs from the top run to this
    # the first step whose tasks this run planned itself (their journal starts empty); until
    # begin() knows, every lookup asks the store
    fresh_step = 1 << 62
    branch = ""  # set on replays and forks: their tasks are new, not the originals
    resuming = False
    lone = False  # the step has one task: its outcome waits for the step's checkpoint
    # (checkpoint it belongs to, the lone task's outcome) until that checkpoint stores it (see
    # task_finished); None when there is none to store
    deferred: tuple[str, PendingWrite] | None = None
    skip_before = False  # resuming from a static breakpoint taken before this step
    paused = False
    # streaming, when no mode is asked for (see __init__)
    modes: frozenset[str] = frozenset()
    tuples = True  # a list of modes yields (mode, payload)
    streaming = False
    subgraphs = False  # the events of subgraph runs too, each with the path of the run
    live_inline = False
    debug = False
    task_events = False  # LangGraph's task start / result records
    announce = False  # tasks say when they start

    def __init__(
        self,
        graph: CompiledGraph,
        input: Any,
        *,
        thread: str | None = None,
        context: Any = None,
        recursion_limit: int | None = None,
        modes: str | Iterable[str] | None = None,
        log_writes: bool = False,
        checkpoint_id: str | None = None,
        checkpointer: Checkpointer | None = None,
        nested: bool = False,
        token_budget: int | None = None,
        ns: str = "",
        wait: bool | float = False,
        config: dict[str, Any] | None = None,
        store: Any = None,
        subgraphs: bool = False,
        cancel: Any = None,
    ) -> None:
        self.graph = graph
        self.schema = graph.schema
        self.prog = graph._program
        self.input = input
        self.thread = thread
        self.context = context
        self.config = config  # a LangGraph-style config given to the call (see engine/config.py)
        self.store = store if store is not None else graph.store  # what `store` params receive
        self.limit = DEFAULT_RECURSION_LIMIT if recursion_limit is None else recursion_limit
        if self.limit < 1:
            raise ValueError(f"recursion_limit must be >= 1, got {recursion_limit}")
        # supersteps this run may take: the limit, less one when it applies an input (the step
        # that applies the input counts, as in LangGraph)
        self.max_steps = self.limit
        saver = checkpointer or graph.checkpointer
        self.checkpointer = saver if thread is not None else None
        if thread is not None and saver is None:
            lent = " (checkpointer=True only lends a subgraph its parent's checkpointer)" \
                if graph.inherits_checkpointer else ""
            raise GraphflowError(
                f"thread={thread!r} needs a checkpointer: compile(checkpointer=...) first{lent}")
        if checkpoint_id is not None:
            if thread is None:
                raise GraphflowError("checkpoint= needs thread= as well")
            check_checkpoint_id(checkpoint_id)
        if thread is not None and not nested:
            check_thread_id(thread)
        self.ns = ns  # the namespace inside the thread ("" unless a subgraph's run)
        self.executor = graph.executor  # runs the tasks it claims elsewhere (None: all here)
        self.wait = wait
        if cancel is not None and not callable(getattr(cancel, "is_set", None)):
            raise TypeError(f"cancel= takes an event with is_set() (threading.Event, "
                            f"asyncio.Event), not {type(cancel).__name__}")
        self.cancel = cancel  # set: stop where the next superstep would begin
        self.start_from = checkpoint_id
        if modes is not None:  # streaming
            mode_list = [modes] if isinstance(modes, str) else list(modes)
            bad = [m for m in mode_list if m not in STREAM_MODES]
            if bad:
                raise ValueError(
                    f"unknown stream mode(s) {bad}; choose from {sorted(STREAM_MODES)}")
            self.modes = frozenset(mode_list)
            self.tuples = not isinstance(modes, str)
            self.streaming = bool(self.modes)
            self.subgraphs = subgraphs and self.streaming
            self.live_inline = "custom" in self.modes or "messages" in self.modes or \
                self.subgraphs
            self.debug = "debug" in self.modes
            self.task_events = "tasks" in self.modes
            self.announce = self.debug or self.task_events
        self.events: list[Any] = []
        # progress
        self._dict_state = self.schema.kind == "typeddict"
        self._plain_input = self._dict_state and not self.prog.shaped  # nodes read a copy
        self.held: list[Task] = []  # deferred tasks waiting for the others to finish
        self.values: dict[str, Any] = {}
        self.tasks: list[Task] = []
        self.joins_seen: dict[int, set[str]] = {}
        self.recent: deque[list[Task]] = deque(maxlen=12)
        if log_writes:
            self.log = []
        self._routing: tuple[dict[str, None], list[Send]] = ({}, [])
        # the edges fired since the last checkpoint, as (source, target) pairs; kept only when
        # checkpointing (stored as the next checkpoint's metadata["edges"], see plan)
        self._taken: list[tuple[str, str]] = []
        self._step_writes: list[tuple[str, str, Any]] = []
        self._journal: dict[str, list[Any]] = {}
        self.token_budget = token_budget
        # Command(graph=Command.PARENT)s of the last step: {"update", "goto"} for the parent
        self.to_parent: list[dict[str, Any]] = []
        # tokens this run paid for (the token budget's measure), and the thread's totals before
        # it (from the checkpoint it continues): checkpoints store the sum of the two
        self.usage = {"input_tokens": 0, "output_tokens": 0, "cost": 0.0}
        self.usage_base = {"input_tokens": 0, "output_tokens": 0, "cost": 0.0}
        self._usage_lock = threading.Lock()
        self.run_id = random_hex(64)  # tells this run's journal entries from older ones
        self.interrupts: list[Interrupt] = []
        # static breakpoints belong to the graph being run, not to it as someone's subgraph
        self.before = frozenset() if nested else graph.interrupt_before
        self.after = frozenset() if nested else graph.interrupt_after

    # -- events ----------------------------------------------------------------------------------

    def wants(self, mode: str) -> bool:
        """Whether ``mode`` events are streamed (by this run, or the run it is a subgraph of)."""
        return mode in self.modes or (self.parent is not None and self.parent.wants(mode))

    def adopt(self, parent: Run, name: str, *, mount: str | None) -> None:
        """Run as a part of ``parent``: a subgraph node ``mount`` of it, or (``mount`` None) a
        graph invoked from inside one of its nodes. It writes under the parent's lease; one
        run's usage totals and token budget; its stream events reach the parent's stream, under
        ``parent.path + (name,)``."""
        self.parent, self.mount = parent, mount
        self.lease = parent.lease
        if self.store is None:  # a subgraph without a store of its own uses its parent's
            self.store = parent.store
        if self.cancel is None:  # cancelling the run stops its subgraphs' steps too
            self.cancel = parent.cancel
        self.usage, self._usage_lock = parent.usage, parent._usage_lock
        self.usage_base = parent.usage_base
        self.path = (*parent.path, name)
        if parent.subgraphs:  # every event of the subgraph goes up
            self.modes, self.tuples, self.streaming = parent.modes, parent.tuples, True
            self.subgraphs = self.live_inline = True
            self.debug, self.task_events = parent.debug, parent.task_events
            self.announce = parent.announce

    def emit(self, mode: str, payload: Any, path: tuple[str, ...] | None = None) -> None:
        """Deliver a stream event, if that mode was asked for (``path``: of the subgraph run it
        comes from; default: this run's)."""
        if self.parent is not None:
            if self.subgraphs or mode in ("messages", "custom"):
                self.parent.emit(mode, payload, self.path if path is None else path)
            return
        if mode in self.modes:
            if self.subgraphs:
                where = () if path is None else path
                item = (where, mode, payload) if self.tuples else (where, payload)
            else:
                item = (mode, payload) if self.tuples else payload
            sink = self.sink
            if sink is not None:
                sink(item)
            else:
                self.events.append(item)

    def flush(self) -> list[Any]:
        events, self.events = self.events, []
        return events

    def task_id(self, step: int, node: str, index: int) -> str:
        """Deterministic: the same task of the same step, ``Send`` index and branch has the same
        id within its thread and namespace (what pending writes and the journal are keyed by);
        built structurally (see :mod:`graphflow.engine.ids`), so no two tasks share one."""
        return make_task_id(step, self.prog.name_ids[node], index, self.branch)

    def id_of(self, task: Task) -> str:
        """The id of ``task``, a task of the current step (made once per task)."""
        tid = task.id
        if tid is None:
            tid = task.id = make_task_id(self.step, self.prog.name_ids[task.name], task.index,
                                         self.branch)
        return tid

    # -- the thread's lease (one writer per thread) --------------------------------------------

    def lease_waits(self) -> Iterator[float]:
        """Take the thread's lease; yields the pauses to sleep while waiting for a busy thread
        (the sync and async drivers sleep them their own way). Nothing for a run without a
        thread, or a subgraph's run (it writes under its parent's lease)."""
        saver = self.checkpointer
        if saver is None or self.parent is not None or self.lease is not None:
            return
        lease = Lease(saver, self.thread or "", saver.lease_ttl)
        yield from lease.acquire(self.wait)
        self.lease = lease

    def started(self) -> None:
        """The run begins (its lease is held): open its span when tracing is on."""
        if tracing.TRACER is not None:
            tracing.run_started(self)

    def ended(self, error: BaseException | None) -> None:
        """The run ends (``error``: how it failed): close its spans."""
        if self.spans:
            tracing.run_ended(self, None if isinstance(error, GeneratorExit) else error)

    def release(self) -> None:
        """Give the thread's lease back (a run that holds one, at its end, however it ends)."""
        lease, self.lease = self.lease, None
        if lease is not None and self.parent is None:
            # a closed store or a lost connection: the lease expires by itself then
            with contextlib.suppress(Exception):
                lease.release()

    # -- journal ---------------------------------------------------------------------------------

    def journal(self, key: str) -> list[Any]:
        """The journaled results under ``key`` (a key of a task of the current step: its id,
        an inner slot's ``id/slot``, or ``id#resume``). The store is asked only for the tasks
        of a resumed step: every task this run planned itself is new, so nothing can have been
        journaled under its id before."""
        entries = self._journal.get(key)
        if entries is None:
            saver = self.checkpointer
            if saver is not None and self.step < self.fresh_step:
                entries = saver.get_journal(self.thread or "", key, ns=self.ns)
            else:
                entries = []
            self._journal[key] = entries
        return entries

    def record(self, key: str, index: int, value: Any) -> None:
        """Journal ``value`` as the ``index``-th result under ``key`` (stored at once)."""
        entries = self.journal(key)
        if index < len(entries):
            entries[index] = value
        else:
            entries.append(value)
        if self.checkpointer is not None:
            self.checkpointer.put_journal(self.thread or "", key, index, value, ns=self.ns)

    # -- model usage ---------------------------------------------------------------------------

    def add_usage(self, input_tokens: int, output_tokens: int, cost: float = 0.0, *,
                  earlier: bool = False) -> None:
        """Count a model call's tokens (and cost) in this run's totals; ``earlier``: a call an
        earlier run paid for and no checkpoint counted (it crashed), which goes to the thread's
        totals but not to this run's token budget."""
        with self._usage_lock:
            totals = self.usage_base if earlier else self.usage
            totals["input_tokens"] = totals.get("input_tokens", 0) + input_tokens
            totals["output_tokens"] = totals.get("output_tokens", 0) + output_tokens
            totals["cost"] = totals.get("cost", 0.0) + cost

    def _usage_metadata(self) -> dict[str, Any]:
        """``{"usage": the thread's totals}`` for a checkpoint (nothing before any usage)."""
        run, base = self.usage, self.usage_base
        if not (run["input_tokens"] or run["output_tokens"] or base["input_tokens"]
                or base["output_tokens"]):
            return {}
        return {"usage": {k: base.get(k, 0) + run[k] for k in run}}

    def check_budget(self, node: str) -> None:
        """Raise :class:`TokenBudgetExceeded` once the run's tokens exceed its budget."""
        used = self.usage["input_tokens"] + self.usage["output_tokens"]
        if self.token_budget is not None and used > self.token_budget:
            raise TokenBudgetExceeded(self.token_budget, used, node)

    # -- tasks -----------------------------------------------------------------------------------

    def node_input(self, task: Task) -> Any:
        """The first argument of a node: its Send's argument, or a fresh view of the state."""
        if task.index >= 0:
            return task.input
        if self._plain_input:
            return self.values.copy()
        if task.spec.subgraph is not None:
            return self.values
        return self.shaped_view(task.name)

    def router_view(self) -> Any:
        """What routers read: the state (with managed values, without private keys)."""
        if not self.prog.shaped:
            return self.schema.view(self.values)
        return self.shaped_view(None)

    def shaped_view(self, node: str | None) -> Any:
        """What ``node`` reads (None: a router): the keys of its input schema (the state's
        own keys when the graph has private ones), plus managed values, in its schema's
        type."""
        keys, schema = self.prog.inputs[node]
        values = self.values
        view = values.copy() if keys is None else {k: values[k] for k in keys if k in values}
        if schema.managed:
            view.update(managed_values(schema.managed, self.max_steps - self.steps_run + 1))
        return view if schema.kind == "typeddict" else schema.view(view)

    def make_ctx(self, task: Task) -> RunContext:
        return RunContext(self, task.name, self.step, task.index, task)

    def task_started(self, task: Task) -> None:
        self.emit("debug", {"type": "task", "step": self.step, "node": task.name,
                            "task_id": self.id_of(task)})
        if self.task_events:
            self.emit("tasks", {"id": self.id_of(task), "name": task.name,
                                "input": task.input if task.is_send else self.state_view()})

    def checkpoint_stored(self, cp: Checkpoint) -> None:
        """Stream a stored checkpoint on the ``"checkpoints"`` mode, shaped as LangGraph's
        (its config and parent's, values, metadata, next, and the tasks due)."""
        if "checkpoints" not in self.modes:
            return
        from .config import checkpoint_config

        values = cp.values
        branch = cp.metadata.get("branch", "")
        name_ids = self.prog.name_ids
        self.emit("checkpoints", {
            "config": checkpoint_config(cp.thread, cp.id, cp.ns),
            "parent_config": None if cp.parent_id is None
            else checkpoint_config(cp.thread, cp.parent_id, cp.ns),
            "values": {k: values[k] for k in self.prog.state_keys if k in values},
            "metadata": dict(cp.metadata),
            "next": [name for name, _, _ in cp.next],
            "tasks": [{"id": make_task_id(cp.step + 1, name_ids.get(name, name), index, branch),
                       "name": name, "interrupts": (), "state": None}
                      for name, index, _ in cp.next],
        })

    def task_finished(self, task: Task) -> None:
        """Store a finished task's outcome at once (pending write) and stream it.

        The outcome of a step's lone task is not stored apart: the checkpoint that ends the
        step, moments later, records it (its writes, and the tasks it leads to), in the step's
        one commit. If the step fails after the task and before that checkpoint (a router
        raised), :meth:`store_deferred` stores it on its own, so it is never lost; if the
        task's writes are rejected it is not stored at all (it must run again). A crash in
        between re-runs the task, as a crash just before a separate commit would.
        """
        if self.checkpointer is None and not self.streaming:
            return
        if self.checkpointer is not None and self.checkpoint_id is not None:
            task_id = self.id_of(task)
            if task.interrupts:
                self.checkpointer.put_writes(self.thread or "", self.checkpoint_id, PendingWrite(
                    task_id, task.name, [(INTERRUPT_KEY, list(task.interrupts))]), ns=self.ns)
            elif task.error is None:
                write = PendingWrite(task_id, task.name, list(items_of(task.writes)),
                                     task.update, task.goto)
                if self.lone:
                    self.deferred = (self.checkpoint_id, write)
                else:
                    self.checkpointer.put_writes(self.thread or "", self.checkpoint_id, write,
                                                 ns=self.ns)
        if task.error is None and not task.interrupts:
            self.emit("updates", {task.name: task.update})
        if self.task_events:
            self.emit("tasks", {"id": self.id_of(task), "name": task.name,
                                "error": None if task.error is None else repr(task.error),
                                "result": task.update, "interrupts": list(task.interrupts)})
        if self.debug:
            self.emit("debug", {
                "type": "task_result", "step": self.step, "node": task.name,
                "task_id": self.id_of(task),
                "update": task.update, "error": None if task.error is None else repr(task.error),
                "interrupts": list(task.interrupts),
            })

    # -- the superstep cycle -----------------------------------------------------------------------

    def begin(self) -> tuple[Branch, ...] | None:
        """Apply the input and return START's routers to evaluate; or, to resume (``input`` None
        or ``Command(resume=...)``), load the thread's due tasks and return None."""
        saver = self.checkpointer
        chain = saver.chain(self.thread or "", self.start_from, ns=self.ns) if saver else []
        if self.start_from is not None and not chain:
            raise GraphflowError(
                f"thread {self.thread!r} has no checkpoint {self.start_from!r}")
        cp = chain[-1] if chain else None
        if cp is not None:
            self.checkpoint_id = cp.id
            self.step = cp.step
            self.joins_seen = {int(i): set(s) for i, s in cp.joins.items()}
            self.branch = cp.metadata.get("branch", "")
            if self.parent is None:
                self.usage_base.update(cp.metadata.get("usage") or {})
            if self.start_from is not None and not isinstance(self.input, Command):
                cp = self._fork(cp, rebuild_values(self.graph, chain))
                chain = [cp]
        inp = self.input
        if isinstance(inp, Command):
            if inp.update is not None or inp.goto:
                raise GraphflowError("as a run's input, Command only carries resume=...")
            if cp is None:
                raise GraphflowError(
                    f"nothing to resume: thread {self.thread!r} has no checkpoint")
            self._store_answers(cp, inp.resume)
            inp = None
        if inp is None:
            if cp is None:
                where = f"thread {self.thread!r} has no checkpoint" if self.thread else \
                    "a run without a thread has nothing"
                raise GraphflowError(f"nothing to resume: {where}; pass an input to start a run")
            self.values = rebuild_values(self.graph, chain)
            if cp.next and cp.next[0][0] == START:  # an input checkpoint: its input is due
                self.fresh_step = self.step + 1  # every task this run plans is new
                return self._apply_input(cp.next[0][2])
            self.emit("values", self.state_view())
            self._load_due_tasks(cp)
            self.fresh_step = cp.step + 2  # the resumed step's tasks may have journaled calls
            return None
        if cp is not None and cp.next:
            # a new input on a thread whose last run stopped with tasks due (an error, a crash,
            # an interrupt): those tasks are dropped, and this run's tasks must not take their
            # ids (nor replay what their journal holds): a new branch
            self.branch = random_hex(48)
        base = rebuild_values(self.graph, chain) if chain else self.schema.defaults()
        writes = self.schema.check_input(inp, base)  # input errors, before anything runs
        allowed = self.prog.input_keys
        if allowed is not None and not allowed.issuperset(writes):
            key = next(k for k in writes if k not in allowed)
            raise InvalidUpdateError(
                f"input key {key!r} is not among the graph's input keys "
                f"({', '.join(sorted(allowed))}); LangGraph drops such keys, graphflow refuses "
                f"them: leave the key out, or add it to the input schema", node=START, key=key)
        values = apply_writes(self.schema, base, ((START, writes),))
        self.values = base
        self.step = -1 if cp is None else cp.step + 1
        self.fresh_step = self.step + 1  # every task this run plans is new
        if saver is not None and self.parent is None:
            # the thread's input checkpoint: the state before the input, START due (a
            # subgraph's run has none: its history is its parent task's)
            first = self._checkpoint([(START, -1, writes)], "input")
            saver.put(first, lease=self.lease)
            self.checkpoint_stored(first)
        return self._apply_input(writes, values)

    def _apply_input(self, writes: dict[str, Any], values: dict[str, Any] | None = None
                     ) -> tuple[Branch, ...]:
        """Apply the input ``writes`` (``values``: the state with them applied, if known) as the
        superstep after the input checkpoint; return START's routers."""
        if values is None:
            values = apply_writes(self.schema, self.values, ((START, writes),))
        self.values = {k: values[k] for k in self.schema.channels if k in values}  # schema order
        self.step += 1
        self.max_steps = self.limit - 1  # applying the input was a superstep
        if self.checkpointer is not None:
            self._step_writes = [(START, k, v) for k, v in items_of(writes)]
        self.emit("values", self.state_view())
        self._routing = (dict.fromkeys(self.prog.static_out[START]), [])
        if self.checkpointer is not None:
            self._taken.extend(self.prog.static_edges[START])
        return self.prog.branches_of[START]

    def _fork(self, base: Checkpoint, values: dict[str, Any]) -> Checkpoint:
        """Start a new branch at ``base``: a copy of it whose tasks are new ones."""
        self.branch = random_hex(48)
        cp = Checkpoint(
            id=new_checkpoint_id(), thread=base.thread, step=base.step, values=values,
            next=list(base.next), joins=dict(base.joins), parent_id=base.id, created_at=now(),
            metadata={"source": "fork", "step": base.step, "branch": self.branch,
                      **({"usage": base.metadata["usage"]} if "usage" in base.metadata else {})},
            writes=[], ns=self.ns)
        self.checkpointer.put(cp, lease=self.lease)
        self.checkpoint_stored(cp)
        self.checkpoint_id = cp.id
        return cp

    def _load_due_tasks(self, cp: Checkpoint) -> None:
        """Resume ``cp``: its due tasks, minus those whose outcome was stored before."""
        specs = self.prog.specs
        gone = sorted({name for name, _, _ in cp.next if name not in specs})
        if gone:
            raise GraphflowError(
                f"thread {self.thread!r} is due to run node(s) {gone} next, which this graph "
                f"({self.graph.name!r}) no longer has. Add the node(s) back to finish the "
                f"thread, or move it on with update_state(thread, values, as_node=...) (or "
                f"start a new thread)")
        self.tasks = [Task(specs[name], index, arg) for name, index, arg in cp.next]
        pending = self.checkpointer.get_writes(cp.thread, cp.id, ns=self.ns) if cp.next else {}
        self.skip_before = BREAKPOINT_TASK in pending
        for t in self.tasks:
            pw = pending.get(self.task_id(cp.step + 1, t.name, t.index))
            if pw is not None and not any(k in (INTERRUPT_KEY, ERROR_KEY) for k, _ in pw.writes):
                t.writes, t.update, t.goto, t.done = pw.writes, pw.update, pw.goto, True
        self.resuming = True

    def _store_answers(self, cp: Checkpoint, resume: Any) -> None:
        """Journal the answers of ``Command(resume=...)`` for the interrupted tasks."""
        from .waits import Wait, is_timer, wait_answer

        waiting = pending_interrupts(self.checkpointer.get_writes(cp.thread, cp.id, ns=self.ns))
        pending = [i for i in waiting if not is_timer(i.value)]  # timers wake by themselves
        if not pending:
            if waiting:
                raise GraphflowError(
                    f"nothing to resume: thread {self.thread!r} is paused on durable timer(s) "
                    f"({', '.join(f'{i.id} in {i.node!r}' for i in waiting)}), which wake by "
                    f"themselves: run a scheduler (graphflow worker) on its checkpointer")
            raise GraphflowError(
                f"nothing to resume: thread {self.thread!r} has no pending interrupt; "
                f"use invoke(None, thread=...) to continue after an error or a breakpoint")
        by_id = {i.id: i for i in pending}
        if isinstance(resume, dict) and resume and all(k in by_id for k in resume):
            answers = resume
        elif len(pending) == 1:
            answers = {pending[0].id: resume}
        else:
            raise GraphflowError(
                f"thread {self.thread!r} has {len(pending)} pending interrupts "
                f"({', '.join(f'{i.id} from {i.node!r}' for i in pending)}); resume with a dict "
                f"mapping each interrupt id to its value")
        for iid, value in answers.items():
            intr = by_id[iid]
            if isinstance(intr.value, Wait):  # a signal wait: the value is the payload
                value = wait_answer(value)
            key = intr.task + "#resume"
            if intr.ns == self.ns:
                self.record(key, intr.index, value)
            else:  # an interrupt inside a subgraph: journaled in the subgraph's namespace
                self.checkpointer.put_journal(self.thread or "", key, intr.index, value,
                                              ns=intr.ns)

    def next_step(self) -> list[Task]:
        """Enter the next superstep; enforce cancellation, the recursion limit and breakpoints.

        Every step boundary passes here, in both drivers, after the previous step's checkpoint
        was stored: a cancelled run stops with its history intact and resumable."""
        if self.cancel is not None and self.cancel.is_set():
            raise RunCancelledError(self.thread, self.step, self.checkpoint_id)
        tasks = self.tasks
        if self.prog.deferred and len(tasks) > 1:
            now = [t for t in tasks if not t.spec.defer]
            if now and len(now) < len(tasks):  # deferred tasks wait until they are all left
                self.held = [t for t in tasks if t.spec.defer]
                self.tasks = tasks = now
        before = self.before
        if before and not self.skip_before and any(t.name in before for t in tasks):
            self.paused = True  # the checkpoint holding these tasks is already stored
            self.emit("updates", {INTERRUPT_KEY: ()})
            return []
        self.skip_before = False
        self.steps_run += 1
        if self.steps_run > self.max_steps:
            counts = Counter(t.name for step in self.recent for t in step)
            raise GraphRecursionError(self.limit, counts.most_common())
        self.step += 1
        self.recent.append(tasks)
        if self.resuming:
            self.resuming = False
            tasks = [t for t in tasks if not t.done]
        self.lone = len(tasks) == 1
        if self.spans:
            tracing.step_started(self, tasks)
        return tasks

    def after_step(self) -> tuple[Branch, ...] | None:
        """Merge the finished step's writes; return the routers to evaluate on the new state.

        Returns None when the step paused on an interrupt: nothing is merged, the finished
        tasks' writes stay stored as pending writes, and the run ends here.
        """
        tasks = self.tasks
        prog = self.prog
        if self.spans:
            tracing.step_ended(self, tasks)
        if len(tasks) == 1:  # the common case, without the bookkeeping of parallel steps
            t = tasks[0]
            if t.error is not None:
                raise t.error
            if t.interrupts:
                return self._pause(tasks)
            try:
                self.values = apply_writes(self.schema, self.values, ((t.name, t.writes),),
                                           self.log)
            except InvalidUpdateError:
                self.deferred = None  # a rejected outcome is not a finished task: never stored
                raise
            if self.checkpointer is not None:
                self._step_writes = [(t.name, k, v) for k, v in items_of(t.writes)]
            if "values" in self.modes and t.writes:  # a step that wrote nothing shows nothing
                self.emit("values", self.state_view())
            name = t.name
            if t.goto is None and not prog.joins_of[name]:
                self._routing = (dict.fromkeys(prog.static_out[name]), [])
                if self.checkpointer is not None:
                    self._taken.extend(prog.static_edges[name])
                return prog.branches_of[name]
        else:
            for t in tasks:  # tasks are in merge order, so the first error is deterministic
                if t.error is not None:
                    raise t.error
            if any(t.interrupts for t in tasks):
                return self._pause(tasks)
            self.values = self._merge(tasks)
            if self.checkpointer is not None:
                self._step_writes = [(t.name, k, v) for t in tasks for k, v in items_of(t.writes)]
            if "values" in self.modes and any(t.writes for t in tasks):
                self.emit("values", self.state_view())
        return self.route_from(tasks)

    def _merge(self, tasks: list[Task]) -> dict[str, Any]:
        """The state with the writes of a parallel step applied. When a task's writes are
        rejected (a wrong type, a failing reducer, a second write to a key without reducer),
        its stored outcome is marked failed, so that resuming after a fix runs that task again
        and restores the others."""
        at = [0]

        def writes() -> Iterator[tuple[str, Any]]:
            for i, t in enumerate(tasks):
                at[0] = i
                yield t.name, t.writes

        try:
            return apply_writes(self.schema, self.values, writes(), self.log)
        except InvalidUpdateError as exc:
            bad = tasks[at[0]]
            if self.checkpointer is not None and self.checkpoint_id is not None:
                self.checkpointer.put_writes(self.thread or "", self.checkpoint_id, PendingWrite(
                    self.id_of(bad), bad.name,
                    [(ERROR_KEY, str(exc))]), ns=self.ns)
            raise

    def route_from(self, tasks: list[Task]) -> tuple[Branch, ...]:
        """Fire the edges out of ``tasks`` (which just ran); return their routers."""
        prog = self.prog
        names: dict[str, None] = {}
        sends: list[Send] = []
        branches: list[Branch] = []
        seen: set[str] = set()
        taken = self._taken if self.checkpointer is not None else None
        for t in tasks:
            if t.goto is not None:
                self._goto(t, names, sends)
                continue
            name = t.name
            if name in seen:
                continue
            seen.add(name)
            for dst in prog.static_out[name]:
                names[dst] = None
            if taken is not None:
                taken.extend(prog.static_edges[name])
            for i in prog.joins_of[name]:
                srcs, dst = prog.joins[i]
                got = self.joins_seen.setdefault(i, set())
                got.add(name)
                if len(got) == len(srcs):
                    names[dst] = None
                    got.clear()
                    if taken is not None:
                        taken.extend((s, dst) for s in sorted(srcs))
            branches.extend(prog.branches_of[name])
        if self.to_parent:  # a Command.PARENT ends this (sub)graph: the parent goes on
            self._routing = ({}, [])
            return ()
        self._routing = (names, sends)
        return tuple(branches)

    def check_parent_goto(self, task: Task) -> None:
        """Reject a ``Command(graph=Command.PARENT)`` that cannot be carried out, before the
        task's outcome is stored: at the top level, or to a node the parent does not have."""
        commands = parent_commands(task.goto)
        if not commands:
            return
        parent, name = self.parent, self.graph.name
        if parent is None or self.mount is None:
            how = ("runs on its own" if parent is None else
                   "was invoked from inside a node, not added as a node")
            raise InvalidUpdateError(
                f"node {task.name!r} returned Command(graph=Command.PARENT), but graph {name!r} "
                f"{how}: there is no parent graph to hand over to. Add {name!r} as a node of "
                f"the graph that should go on (add_node), or return a Command without graph=",
                node=task.name)
        specs = parent.prog.specs
        declared = specs[self.mount].command_targets
        for command in commands:
            for target in command["goto"]:
                node = target.node if isinstance(target, Send) else target
                if node != END and node not in specs:
                    raise InvalidUpdateError(
                        f"node {task.name!r} of subgraph {name!r} sent Command.PARENT goto to "
                        f"{node!r}, but the parent graph {parent.graph.name!r} has no node "
                        f"{node!r} (its nodes: {', '.join(sorted(specs))})", node=task.name)
                if declared is not None and node not in declared and not isinstance(
                        target, Send):
                    raise InvalidUpdateError(
                        f"node {task.name!r} of subgraph {name!r} sent Command.PARENT goto to "
                        f"{node!r}, which node {self.mount!r} of graph {parent.graph.name!r} "
                        f"does not declare (destinations: {list(declared)})", node=task.name)

    def _pause(self, tasks: list[Task]) -> None:
        self.interrupts = [i for t in tasks for i in t.interrupts]
        self.paused = True
        self.tasks = []
        self.emit("updates", {INTERRUPT_KEY: tuple(self.interrupts)})
        if "values" in self.modes:
            self.emit("values", {**self.state_view(), INTERRUPT_KEY: tuple(self.interrupts)})
        return None

    def _goto(self, task: Task, names: dict[str, None], sends: list[Send]) -> None:
        declared = task.spec.command_targets
        taken = self._taken if self.checkpointer is not None else None
        for target in task.goto or ():
            node = target.node if isinstance(target, Send) else target
            if node == Command.PARENT:  # for the parent graph: checked by check_parent_goto
                self.to_parent.append(target.arg)  # type: ignore[union-attr]
                continue
            if node != END and node not in self.prog.specs:
                raise InvalidUpdateError(f"node {task.name!r} sent goto to unknown node {node!r}",
                                         node=task.name)
            if declared is not None and node not in declared and not isinstance(target, Send):
                raise InvalidUpdateError(
                    f"node {task.name!r} sent goto to {node!r}, which its Command[...] return "
                    f"hint does not declare ({list(declared)})", node=task.name)
            if isinstance(target, Send):
                sends.append(target)
            elif node != END:
                names[node] = None
            if taken is not None:
                taken.append((task.name, node))

    def call_router(self, branch: Branch, view: Any) -> Any:
        """Call a router on ``view``; its result may be awaitable (an async router)."""
        try:
            if branch.inject is not None:
                return branch.inject.call(branch.router, view,
                                          RunContext(self, branch.source, self.step))
            return branch.router(view)
        except Exception as exc:
            self.router_failed(branch, exc)
            raise

    def router_failed(self, branch: Branch, exc: BaseException) -> None:
        """Say in ``exc`` (raised by a router, it reaches the caller as itself) where it was
        raised."""
        annotate(exc, f"router {branch.name!r} on node {branch.source!r}", self, branch.source)

    def resolve(self, branch: Branch, result: Any) -> None:
        """Add a router's answer to the next step's plan."""
        names, sends = self._routing
        items = result if isinstance(result, (list, tuple)) else (result,)
        specs = self.prog.specs
        taken = self._taken if self.checkpointer is not None else None
        for item in items:
            if isinstance(item, Send):
                if item.node not in specs:
                    raise InvalidUpdateError(
                        f"router {branch.name!r} on node {branch.source!r} sent to unknown node "
                        f"{item.node!r}", node=branch.source)
                sends.append(item)
                if taken is not None:
                    taken.append((branch.source, item.node))
                continue
            target = item
            if branch.path_map is not None:
                try:
                    target = branch.path_map[item]
                except (KeyError, TypeError):
                    raise InvalidUpdateError(
                        f"router {branch.name!r} on node {branch.source!r} returned {item!r}, "
                        f"which is not a key of its path_map ({list(branch.path_map)})",
                        node=branch.source) from None
            elif not branch.declares(target):
                raise InvalidUpdateError(
                    f"router {branch.name!r} on node {branch.source!r} returned {target!r}, "
                    f"which it does not declare ({list(branch.targets or ())})",
                    node=branch.source)
            if target != END:
                if target not in specs:
                    raise InvalidUpdateError(
                        f"router {branch.name!r} on node {branch.source!r} returned {target!r}, "
                        f"which is not a node", node=branch.source)
                names[target] = None
            if taken is not None:
                taken.append((branch.source, target))

    def plan(self, *, source: str | None = None) -> None:
        """Turn the routing gathered since the last merge into the next step's tasks, and
        prepare the checkpoint of this step boundary (the driver stores it)."""
        names, sends = self._routing
        specs = self.prog.specs
        ran = self.tasks
        if len(names) == 1 and not sends:
            for n in names:
                tasks = [Task(specs[n])]
        else:
            tasks = [Task(specs[n]) for n in names]
            if sends:
                tasks.extend(Task(specs[s.node], i, s.arg) for i, s in enumerate(sends))
            if len(tasks) > 1:
                tasks.sort(key=Task.sort_key)
        if self.held:  # deferred tasks held back from the last step are due still
            due = {t.name for t in tasks if t.index < 0}
            tasks.extend(t for t in self.held if t.index >= 0 or t.name not in due)
            tasks.sort(key=Task.sort_key)
            self.held = []
        self.tasks = tasks
        after = self.after
        if after and self.steps_run and any(t.name in after for t in ran) and tasks:
            self.paused = True
            self.emit("updates", {INTERRUPT_KEY: ()})
        if self.checkpointer is not None:
            self.pending_checkpoint = self._checkpoint(
                [(t.name, t.index, t.input) for t in tasks], source or "loop")

    def _checkpoint(self, next: list[tuple[str, int, Any]], source: str) -> Checkpoint:
        """The checkpoint of this step boundary (with the step's writes); it becomes the run's
        current one."""
        cp = Checkpoint(
            id=new_checkpoint_id(), thread=self.thread or "", ns=self.ns, step=self.step,
            values=self.values, next=next,
            joins={i: sorted(s) for i, s in self.joins_seen.items() if s},
            parent_id=self.checkpoint_id, created_at=now(),
            metadata={"source": source, "step": self.step,
                      **({"branch": self.branch} if self.branch else {}),
                      **({"to_parent": self.to_parent} if self.to_parent else {}),
                      **self._usage_metadata(), **self._edges_metadata()},
            writes=self._step_writes,
        )
        self._step_writes = []
        self.checkpoint_id = cp.id
        return cp

    def _edges_metadata(self) -> dict[str, Any]:
        """``{"edges": [[source, target], ...]}``: the edges fired since the last checkpoint
        (static edges, routers' results, ``goto``, ``Send``, joins), in firing order, each
        once; ``[source, target, n]`` for an edge fired ``n`` > 1 times (``n`` ``Send`` s)."""
        taken = self._taken
        if not taken:
            return {}
        self._taken = []
        if len(taken) == 1:
            return {"edges": [list(taken[0])]}
        return {"edges": [[s, d] if n == 1 else [s, d, n] for (s, d), n in Counter(taken).items()]}

    def take_checkpoint(self) -> Checkpoint | None:
        """The checkpoint the last plan made, to store. It also records the outcome of the
        step's lone task (its writes, and where the run goes next), so that outcome is not
        stored apart; without such a checkpoint it is stored on its own now."""
        cp, self.pending_checkpoint = self.pending_checkpoint, None
        if self.deferred is not None and (cp is None or cp.parent_id != self.deferred[0]):
            self.store_deferred()  # no checkpoint of this step to carry it: store it alone
        self.deferred = None
        return cp

    def _take_deferred(self) -> tuple[str, str, PendingWrite] | None:
        deferred, self.deferred = self.deferred, None
        if deferred is None or self.checkpointer is None:
            return None
        return self.thread or "", deferred[0], deferred[1]

    def store_deferred(self) -> None:
        """Store the lone task's outcome now: the step failed after the task (a router), before
        its checkpoint."""
        args = self._take_deferred()
        if args is not None:
            self.checkpointer.put_writes(*args, ns=self.ns)

    async def astore_deferred(self) -> None:
        """Async :meth:`store_deferred`."""
        args = self._take_deferred()
        if args is not None:
            await self.checkpointer.aput_writes(*args, ns=self.ns)

    def breakpoint_write(self) -> PendingWrite:
        """The marker stored when pausing before a step, so resuming runs that step."""
        return PendingWrite(BREAKPOINT_TASK, BREAKPOINT_TASK, [])

    # -- results ---------------------------------------------------------------------------------

    def output(self) -> Any:
        """What the run returns: the state in the user's type (a dict in the schema's key
        order, or a schema instance)."""
        if self._dict_state:
            values = self.values
            return {k: values[k] for k in self.prog.out_keys if k in values}
        return self.schema.view(self.values)

    def state_view(self) -> Any:
        """The state as ``"values"`` streams it and snapshots show it: every key of the state,
        in the schema's key order (or a schema instance)."""
        if self._dict_state:
            values = self.values
            return {k: values[k] for k in self.prog.state_keys if k in values}
        return self.schema.view(self.values)

    def result(self) -> Any:
        """What invoke returns: the state; for dict states with pending interrupts, plus
        ``"__interrupt__"``."""
        out = self.output()
        if self.interrupts and isinstance(out, dict):
            out[INTERRUPT_KEY] = tuple(self.interrupts)
        return out
