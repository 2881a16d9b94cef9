""":class:`CompiledGraph`: the runnable graph ``StateGraph.compile()`` returns."""

from __future__ import annotations

import asyncio
import copy
import queue
import threading
from collections.abc import (
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from ..checkpoint.base import Checkpointer
from ..constants import START
from ..errors import GraphValidationError
from .async_driver import run_async
from .config import DURABILITY, call_options, coerce_context, merge_configs
from .diagram import Drawable
from .ids import child_namespace
from .interrupts import SCOPE, GraphInterrupt
from .journal import ajournaled, journaled, slot_key
from .program import Program
from .run import Run, rebuild_values
from .sync_driver import run_sync
from .task import SubgraphUpdate, Task
from .threads import Threads

if TYPE_CHECKING:
    import networkx as nx

    from ..draw.view import GraphView
    from ..graph.state_graph import StateGraph
    from .context import RunContext
    from .executor import Executor

__all__ = ["CompiledGraph"]

T = TypeVar("T")
StreamMode = str | Sequence[str]


def _run_blocking(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    # Called from a running loop: blocking it on itself would deadlock, so use a private loop.
    with ThreadPoolExecutor(1, thread_name_prefix="graphflow-sync") as ex:
        return ex.submit(asyncio.run, make()).result()


def _iter_blocking(make: Callable[[], AsyncIterator[T]]) -> Iterator[T]:
    """Iterate an async generator from sync code, on a private loop in a helper thread."""
    items: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
    stop = threading.Event()

    async def pump() -> None:
        try:
            async for item in make():
                items.put((0, item))
                if stop.is_set():
                    break
        except BaseException as exc:
            items.put((1, exc))
        else:
            items.put((2, None))

    threading.Thread(target=asyncio.run, args=(pump(),), daemon=True,
                     name="graphflow-stream").start()
    try:
        while True:
            kind, item = items.get()
            if kind == 0:
                yield item
            elif kind == 1:
                raise item
            else:
                return
    finally:
        stop.set()


async def _drain(events: AsyncIterator[Any]) -> None:
    async for _ in events:
        pass


def _default_mode(mode: StreamMode | None, stream_mode: StreamMode | None) -> StreamMode | None:
    """``stream``'s mode: ``"updates"`` unless ``mode`` or ``stream_mode`` says otherwise."""
    return "updates" if mode is None and stream_mode is None else stream_mode


def _invoke_result(run: Run, events: list[Any] | None,
                   output_keys: str | Sequence[str] | None) -> Any:
    """What ``invoke`` returns: the collected ``events`` (a ``stream_mode`` other than
    ``"values"``), or the final state, or (``output_keys``) part of it."""
    if events is not None:
        return events
    out = run.result()
    if output_keys is None or not isinstance(out, Mapping):
        return out
    if isinstance(output_keys, str):
        return out.get(output_keys)
    return {k: out[k] for k in output_keys if k in out}


def _child_ns(parent: Run, task: Task) -> str:
    """The namespace of the subgraph run that ``task`` of ``parent`` makes."""
    return child_namespace(parent.ns, parent.id_of(task))


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:
        return False


def breakpoints(nodes: Mapping[str, Any], names: str | Sequence[str], where: str
                ) -> frozenset[str]:
    """The nodes named as breakpoints: a name, a list of names, or ``"*"`` for every node."""
    if names == "*":
        return frozenset(nodes)
    chosen = (names,) if isinstance(names, str) else tuple(names)
    for node in chosen:
        if node not in nodes:
            known = ", ".join(sorted(nodes)) or "none"
            raise GraphValidationError(
                f"{where}: breakpoint on unknown node {node!r} (nodes: {known}; '*' is all)")
    return frozenset(chosen)


class CompiledGraph(Threads, Drawable):
    """A validated graph, ready to run. Made by :meth:`StateGraph.compile`.

    Run it with :meth:`invoke` / :meth:`ainvoke`, watch it with :meth:`stream` / :meth:`astream`,
    run many inputs with :meth:`batch` / :meth:`abatch`. With a checkpointer, ``thread="..."``
    keeps state between runs and :meth:`get_state` reads it.
    """

    def __init__(self, builder: StateGraph, nxgraph: nx.MultiDiGraph, *,
                 checkpointer: Checkpointer | None, name: str,
                 interrupt_before: Sequence[str] = (),
                 interrupt_after: Sequence[str] = (), store: Any = None,
                 cache: Any = None) -> None:
        self.builder = builder
        self.store = store
        self.cache = cache  # where nodes with a cache_policy keep their results
        self.checkpoints = True  # as a subgraph: checkpoint with the parent's checkpointer
        self.inherits_checkpointer = False  # compiled with checkpointer=True
        self._config: dict[str, Any] | None = None  # with_config defaults
        self.interrupt_before = breakpoints(builder.nodes, interrupt_before, "interrupt_before")
        self.interrupt_after = breakpoints(builder.nodes, interrupt_after, "interrupt_after")
        self.schema = builder.schema
        self.name = name
        self.checkpointer = checkpointer
        self.executor: Executor | None = None  # where claimed tasks run (see with_executor)
        self._nx = nxgraph
        nxgraph.graph["name"] = name
        self._program = Program(builder)
        from ..checkpoint.serde import register_schema_types

        register_schema_types(self.schema.cls)  # the state's own types may be stored
        self._has_async = any(
            spec.is_async or (spec.subgraph is not None and spec.subgraph._has_async)
            for spec in builder.nodes.values()
        ) or any(b.is_async for b in builder.branches)

    def __repr__(self) -> str:
        return f"<CompiledGraph {self.name!r}: {len(self._program.specs)} nodes>"

    def _copy(self, **changes: Any) -> CompiledGraph:
        other = copy.copy(self)
        for key, value in changes.items():
            setattr(other, key, value)
        return other

    def with_checkpointer(self, checkpointer: Checkpointer | None) -> CompiledGraph:
        """The same graph (nodes, edges, breakpoints, name, store, cache, executor, config) on
        another checkpointer."""
        return self._copy(checkpointer=checkpointer)

    def with_executor(self, executor: Executor | None) -> CompiledGraph:
        """The same graph whose steps hand the tasks ``executor`` claims to it (run elsewhere,
        e.g. on a Ray cluster: ``graphflow.distributed.RayExecutor``); the other tasks run
        here. Merge order, pending writes and checkpoints are unchanged. None: all run here.
        """
        return self._copy(executor=executor)

    def with_config(self, config: Mapping[str, Any] | None = None,
                    **kwargs: Any) -> CompiledGraph:
        """The same graph with default config for every call (LangGraph's ``with_config``):
        ``app.with_config({"recursion_limit": 50})`` or ``with_config(recursion_limit=50)``.
        A call's own config is merged over it (``configurable`` key by key)."""
        extra = merge_configs(config, kwargs)
        call_options(None, extra, where="with_config")  # checked now, not at the first call
        return self._copy(_config=merge_configs(self._config, extra))

    def get_name(self) -> str:
        """The graph's name (``compile(name=...)``; ``"graph"`` by default)."""
        return self.name

    # -- running ---------------------------------------------------------------------------------

    def _run(self, input: Any, config: Any, where: str, *, thread: str | None = None,
             context: Any = None, recursion_limit: int | None = None,
             checkpoint: str | None = None, token_budget: int | None = None,
             wait: bool | float = False, mode: StreamMode | None = None,
             stream_mode: StreamMode | None = None, durability: str | None = None,
             store: Any = None, subgraphs: bool = False, cancel: Any = None,
             interrupt_before: str | Sequence[str] | None = None,
             interrupt_after: str | Sequence[str] | None = None) -> Run:
        """The run of one call; LangGraph's spellings are translated here, once."""
        opts = call_options(self._config, config, where=where, thread=thread,
                            checkpoint=checkpoint, recursion_limit=recursion_limit, mode=mode,
                            stream_mode=stream_mode)
        if durability is not None and durability not in DURABILITY:
            raise ValueError(f"{where}: durability must be one of {DURABILITY}, got "
                             f"{durability!r}")
        run_thread = opts.thread
        if (thread is None and run_thread is not None and self.checkpointer is None
                and not self.inherits_checkpointer):
            # LangGraph ignores a config's thread_id when nothing checkpoints the graph: the run
            # is not stored, and nodes still read the id from their config
            opts.config.setdefault("configurable", {})["thread_id"] = run_thread
            run_thread = None
        graph = self
        if interrupt_before is not None or interrupt_after is not None:  # this run's breakpoints
            nodes = self.builder.nodes
            graph = self._copy(
                interrupt_before=self.interrupt_before if interrupt_before is None
                else breakpoints(nodes, interrupt_before, f"{where}(interrupt_before=...)"),
                interrupt_after=self.interrupt_after if interrupt_after is None
                else breakpoints(nodes, interrupt_after, f"{where}(interrupt_after=...)"))
        return Run(graph, input, thread=run_thread, context=self._context(context),
                   recursion_limit=opts.recursion_limit, modes=opts.modes,
                   checkpoint_id=opts.checkpoint, token_budget=token_budget, wait=wait,
                   config=opts.config, store=store, subgraphs=subgraphs, cancel=cancel)

    def _context(self, context: Any) -> Any:
        """``context=`` as the graph's ``context_schema`` type (a dict becomes one)."""
        schema = self.builder.context_schema
        if schema is None or not isinstance(context, Mapping):
            return context  # none, or already an object (of the schema's type, or any)
        return coerce_context(schema, context)

    def _nested(self, config: Any, thread: str | None, checkpoint: str | None) -> Any:
        """The running node's scope when this call is a graph invoked from inside a node (no
        thread of its own, or the node's own thread, and no checkpoint); else None."""
        scope = SCOPE.get(None)
        if scope is None or checkpoint is not None:
            return None
        if config is not None or self._config:
            opts = call_options(self._config, config, where="invoke", thread=thread)
            thread, checkpoint = opts.thread, opts.checkpoint
        if checkpoint is not None or thread not in (None, scope[0].thread):
            return None
        return scope

    def invoke(self, input: Any, config: Mapping[str, Any] | None = None, *,
               thread: str | None = None, context: Any = None,
               recursion_limit: int | None = None, checkpoint: str | None = None,
               token_budget: int | None = None, wait: bool | float = False,
               store: Any = None, cancel: Any = None, stream_mode: StreamMode | None = None,
               output_keys: str | Sequence[str] | None = None,
               durability: str | None = None,
               interrupt_before: str | Sequence[str] | None = None,
               interrupt_after: str | Sequence[str] | None = None) -> Any:
        """Run the graph to the end and return the final state.

        Args:
            input: a dict (or schema instance) of initial writes; ``None`` continues ``thread``
                (after an error or a breakpoint); ``Command(resume=value)`` answers its pending
                interrupt(s).
            config: a LangGraph config dict (``{"configurable": {"thread_id": "1"}}``,
                ``{"recursion_limit": 50}``, ...), translated into the keywords below (see
                ``graphflow.engine.config``); a value given both ways must agree.
            thread: continue (and checkpoint) this thread; needs a checkpointer.
            context: any object, readable by nodes as ``ctx.context`` (a dict becomes the
                graph's ``context_schema`` type, if it has one).
            recursion_limit: the most supersteps this run may take (default 10,000), the one
                that applies the input included.
            checkpoint: start from this checkpoint of ``thread`` instead of its newest (replay,
                or a new branch of its history); the old history is left intact.
            token_budget: the most tokens the run's model calls may use in all; crossing it
                raises :class:`TokenBudgetExceeded`. A checkpoint's ``metadata["usage"]``
                holds the thread's totals so far (``input_tokens``, ``output_tokens``,
                ``cost``), every run's calls counted once.
            wait: a thread has one writer at a time. If another run is writing ``thread``:
                False (the default) raises :class:`ThreadBusyError` at once, before anything
                runs; True waits until the thread is free; a number waits that many seconds
                at most.
            store: the store this run's nodes, routers and tools receive (a ``store``
                parameter, ``ctx.store``) instead of the one given to ``compile(store=...)``;
                subgraphs without a store of their own receive it too.
            cancel: an event (``threading.Event``, ``asyncio.Event``: anything with
                ``is_set()``) that another thread or task sets to stop the run. The run checks
                it where each superstep begins: the step running finishes and is
                checkpointed, then :class:`RunCancelledError` is raised; the thread's lease is
                released and ``invoke(None, thread=...)`` continues from there.
            stream_mode: ``"values"`` (the default) returns the final state; another mode (or
                a list of modes) returns the list of what :meth:`stream` would yield.
            output_keys: return only this key's value (a str) or these keys (a list).
            durability: accepted for LangGraph's sake; graphflow stores every step before the
                next one starts, whichever is given (``"sync"``, ``"async"``, ``"exit"``).
            interrupt_before, interrupt_after: breakpoints for this run only, in place of
                ``compile(interrupt_before=..., interrupt_after=...)``: node names, or ``"*"``
                for every node.

        Returns:
            A dict for a TypedDict schema, a schema instance for pydantic/dataclass schemas.
            A dict result of a run paused on ``interrupt()`` also holds ``"__interrupt__"``.

        Called from inside a running node (without ``thread=``), the graph runs as a subgraph of
        that node's task: checkpointed in a namespace of its own under the run's checkpointer
        (a resumed node resumes it, or gets its result back without running it again), its
        model calls counted in the run's usage and token budget, its ``interrupt()`` s pausing
        the whole run, and its events in the run's ``stream(subgraphs=True)``.
        """
        scope = self._nested(config, thread, checkpoint)
        if scope is not None:
            return self._invoke_inside(scope, input, self._context(context), recursion_limit)
        kw = {"thread": thread, "context": context, "recursion_limit": recursion_limit,
              "checkpoint": checkpoint, "token_budget": token_budget, "wait": wait,
              "store": store, "cancel": cancel, "durability": durability,
              "interrupt_before": interrupt_before, "interrupt_after": interrupt_after}
        if self._has_async:
            return _run_blocking(lambda: self.ainvoke(
                input, config, stream_mode=stream_mode, output_keys=output_keys, **kw))
        collect = stream_mode is not None and stream_mode != "values"
        run = self._run(input, config, "invoke", mode=stream_mode if collect else None, **kw)
        events = list(run_sync(run))
        return _invoke_result(run, events if collect else None, output_keys)

    async def ainvoke(self, input: Any, config: Mapping[str, Any] | None = None, *,
                      thread: str | None = None, context: Any = None,
                      recursion_limit: int | None = None, checkpoint: str | None = None,
                      token_budget: int | None = None, wait: bool | float = False,
                      store: Any = None, cancel: Any = None,
                      stream_mode: StreamMode | None = None,
                      output_keys: str | Sequence[str] | None = None,
                      durability: str | None = None,
                      interrupt_before: str | Sequence[str] | None = None,
                      interrupt_after: str | Sequence[str] | None = None) -> Any:
        """Async :meth:`invoke`."""
        scope = self._nested(config, thread, checkpoint)
        if scope is not None:
            return await self._ainvoke_inside(scope, input, self._context(context),
                                              recursion_limit)
        collect = stream_mode is not None and stream_mode != "values"
        run = self._run(input, config, "ainvoke", thread=thread, context=context,
                        recursion_limit=recursion_limit, checkpoint=checkpoint,
                        token_budget=token_budget, wait=wait, store=store, cancel=cancel,
                        durability=durability, mode=stream_mode if collect else None,
                        interrupt_before=interrupt_before, interrupt_after=interrupt_after)
        events = [event async for event in run_async(run)]
        return _invoke_result(run, events if collect else None, output_keys)

    def stream(self, input: Any, config: Mapping[str, Any] | None = None, *,
               mode: StreamMode | None = None, thread: str | None = None, context: Any = None,
               recursion_limit: int | None = None, checkpoint: str | None = None,
               token_budget: int | None = None, wait: bool | float = False,
               store: Any = None, subgraphs: bool = False, cancel: Any = None,
               stream_mode: StreamMode | None = None,
               durability: str | None = None,
               interrupt_before: str | Sequence[str] | None = None,
               interrupt_after: str | Sequence[str] | None = None) -> Iterator[Any]:
        """Run the graph, yielding events as they happen.

        ``mode`` (LangGraph's ``stream_mode``; ``"updates"`` by default): ``"updates"``
        (``{node: update}`` per finished task), ``"values"`` (the whole state after the input
        and after each step that wrote something; first the current state when resuming),
        ``"custom"`` (what nodes ``ctx.write``),
        ``"messages"`` (model tokens as ``(chunk, node)``), ``"debug"`` (task start/result
        records), ``"tasks"`` (LangGraph's task start/result records), ``"checkpoints"``
        (each checkpoint as it is stored, shaped as LangGraph's), or a list of them, which
        yields ``(mode, payload)`` tuples. The other arguments are :meth:`invoke`'s.

        ``subgraphs=True`` also yields the events of every subgraph (nodes that are compiled
        graphs, and graphs invoked from inside a node), each as ``(path, payload)`` — or
        ``(path, mode, payload)`` with a list of modes — where ``path`` is the tuple of names
        from this graph down to the one the event came from (``()`` for this graph's own, e.g.
        ``("team", "researcher")``): a UI can tell who is speaking.
        """
        run = self._run(input, config, "stream", thread=thread, context=context,
                        recursion_limit=recursion_limit, checkpoint=checkpoint,
                        token_budget=token_budget, wait=wait, store=store, subgraphs=subgraphs,
                        cancel=cancel, durability=durability, mode=mode,
                        stream_mode=_default_mode(mode, stream_mode),
                        interrupt_before=interrupt_before, interrupt_after=interrupt_after)
        if self._has_async:  # the arguments were checked above, not at the first next()
            return _iter_blocking(lambda: run_async(run))
        return run_sync(run)

    def astream(self, input: Any, config: Mapping[str, Any] | None = None, *,
                mode: StreamMode | None = None, thread: str | None = None,
                context: Any = None, recursion_limit: int | None = None,
                checkpoint: str | None = None, token_budget: int | None = None,
                wait: bool | float = False, store: Any = None, subgraphs: bool = False,
                cancel: Any = None, stream_mode: StreamMode | None = None,
                durability: str | None = None,
                interrupt_before: str | Sequence[str] | None = None,
                interrupt_after: str | Sequence[str] | None = None) -> AsyncIterator[Any]:
        """Async :meth:`stream`."""
        return run_async(self._run(input, config, "astream", thread=thread, context=context,
                                   recursion_limit=recursion_limit, checkpoint=checkpoint,
                                   token_budget=token_budget, wait=wait, store=store,
                                   subgraphs=subgraphs, cancel=cancel, durability=durability,
                                   mode=mode, stream_mode=_default_mode(mode, stream_mode),
                                   interrupt_before=interrupt_before,
                                   interrupt_after=interrupt_after))

    def batch(self, inputs: Iterable[Any], config: Mapping[str, Any] | None = None, *,
              threads: Sequence[str] | None = None, context: Any = None,
              recursion_limit: int | None = None, max_concurrency: int | None = None,
              return_exceptions: bool = False, store: Any = None) -> list[Any]:
        """:meth:`invoke` each input concurrently (threads); results in input order."""
        items = list(inputs)
        if threads is not None and len(threads) != len(items):
            raise ValueError(f"batch got {len(items)} inputs but {len(threads)} threads")
        if not items:
            return []

        def one(i: int) -> Any:
            try:
                return self.invoke(items[i], config, thread=threads[i] if threads else None,
                                   context=context, recursion_limit=recursion_limit, store=store)
            except Exception as exc:
                if return_exceptions:
                    return exc
                raise

        workers = max_concurrency or min(len(items), 32)
        with ThreadPoolExecutor(workers, thread_name_prefix="graphflow-batch") as ex:
            return list(ex.map(one, range(len(items))))

    async def abatch(self, inputs: Iterable[Any], config: Mapping[str, Any] | None = None, *,
                     threads: Sequence[str] | None = None, context: Any = None,
                     recursion_limit: int | None = None, max_concurrency: int | None = None,
                     return_exceptions: bool = False, store: Any = None) -> list[Any]:
        """:meth:`ainvoke` each input concurrently; results in input order."""
        items = list(inputs)
        if threads is not None and len(threads) != len(items):
            raise ValueError(f"abatch got {len(items)} inputs but {len(threads)} threads")
        limit = asyncio.Semaphore(max_concurrency or max(len(items), 1))

        async def one(i: int) -> Any:
            async with limit:
                return await self.ainvoke(items[i], config,
                                          thread=threads[i] if threads else None,
                                          context=context, recursion_limit=recursion_limit,
                                          store=store)

        return await asyncio.gather(*(one(i) for i in range(len(items))),
                                    return_exceptions=return_exceptions)

    # -- invoked from inside a node --------------------------------------------------------------

    def _inside(self, parent: Run, input: Any, context: Any,
                recursion_limit: int | None) -> tuple[Run | None, Any]:
        """The child run of an invoke from inside a node of ``parent`` (None and its result if
        it had finished, before a crash, without its result being journaled)."""
        saver = parent.checkpointer
        thread, ns = None, ""
        if saver is not None:
            # the namespace of this call's journal slot: unique, and the same when run again
            thread, ns = parent.thread or "", child_namespace(parent.ns, slot_key())
            last = saver.get(thread, ns=ns)
            if last is not None and not last.next:
                return None, self.schema.view(rebuild_values(self, saver.chain(thread, ns=ns)))
            if last is not None:
                input = None  # resume it
        child = Run(self, input, thread=thread, checkpointer=saver,
                    context=parent.context if context is None else context,
                    recursion_limit=parent.limit if recursion_limit is None else recursion_limit,
                    nested=True, token_budget=parent.token_budget, ns=ns, config=parent.config)
        child.adopt(parent, self.name, mount=None)
        return child, None

    @staticmethod
    def _outcome(child: Run) -> Any:
        if child.interrupts:
            raise GraphInterrupt(child.interrupts)
        return child.result()

    def _invoke_inside(self, scope: tuple[Run, Task], input: Any, context: Any,
                       recursion_limit: int | None) -> Any:
        parent, task = scope

        def call() -> Any:
            child, done = self._inside(parent, input, context, recursion_limit)
            if child is None:
                return done
            if self._has_async:
                _run_blocking(lambda: _drain(run_async(child)))
            else:
                for _ in run_sync(child):
                    pass
            return self._outcome(child)

        return journaled(parent, task, f"graph:{self.name}", call)

    async def _ainvoke_inside(self, scope: tuple[Run, Task], input: Any, context: Any,
                              recursion_limit: int | None) -> Any:
        parent, task = scope

        async def call() -> Any:
            child, done = self._inside(parent, input, context, recursion_limit)
            if child is None:
                return done
            await _drain(run_async(child))
            return self._outcome(child)

        return await ajournaled(parent, task, f"graph:{self.name}", call)

    # -- as a subgraph node ----------------------------------------------------------------------

    def _saver_under(self, parent: Run) -> Checkpointer | None:
        """The checkpointer of this graph's runs as a subgraph of ``parent``."""
        return parent.checkpointer if self.checkpoints else None

    def _child(self, parent: Run, task: Task) -> tuple[dict[str, Any], Run | None]:
        """The child run for a subgraph task (None: it already finished, before a crash).

        Under a checkpointed parent the child is checkpointed too, in the parent's thread under
        its own namespace (the parent task's namespace path), so an interrupted or crashed
        subgraph resumes where it stopped.
        """
        source = task.input if task.index >= 0 else parent.values
        writes = self.schema.input_writes(source)
        given = {k: v for k, v in writes.items() if k in self.schema.keys}
        saver = self._saver_under(parent)
        ns = ""
        if saver is not None:
            ns = _child_ns(parent, task)
            last = saver.get(parent.thread or "", ns=ns)
            if last is not None and not last.next:
                return given, None
            if last is not None:
                given_input: Any = None  # resume the child
            else:
                given_input = given
        else:
            given_input = given
        child = Run(self, given_input, thread=parent.thread if saver is not None else None,
                    checkpointer=saver, context=parent.context, recursion_limit=parent.limit,
                    log_writes=True, nested=True, token_budget=parent.token_budget, ns=ns,
                    store=self.store if self.store is not None else parent.store,
                    config=parent.config)
        child.adopt(parent, task.name, mount=task.name)
        return given, child

    def _changes(self, parent: Run, task: Task, given: dict[str, Any],
                 child: Run | None) -> SubgraphUpdate:
        """The parent's writes: reducer keys get the child's own writes, others changed values;
        then the updates of the ``Command.PARENT`` s the child ended with, and their gotos."""
        if child is not None and child.interrupts:
            raise GraphInterrupt(child.interrupts)
        saver = self._saver_under(parent)
        if saver is not None:  # the whole child history, across resumes, is in its namespace
            ns, thread = _child_ns(parent, task), parent.thread or ""
            history = saver.list(thread, ns=ns)[::-1]
            log = [(k, v) for cp in history if cp.metadata.get("source") == "loop"
                   for n, k, v in cp.writes if n != START]
            final = child.values if child is not None else \
                rebuild_values(self, saver.chain(thread, ns=ns))
            commands = child.to_parent if child is not None else (
                history[-1].metadata.get("to_parent") or [] if history else [])
        else:
            assert child is not None
            log, final, commands = child.log or [], child.values, child.to_parent
        pchannels = parent.schema.channels
        shared = self.schema.keys & parent.schema.keys
        out = [(k, v) for k, v in log if k in shared and pchannels[k].reducer]
        commanded = {k for c in commands for k in c["update"]}
        for k in sorted(shared):
            if pchannels[k].reducer is None and k in final and k not in commanded:
                value = final[k]
                if k not in given or not _same(given[k], value):
                    out.append((k, value))
        update = {k: final[k] for k, _ in out}
        goto: list[Any] = []
        for command in commands:
            out.extend(command["update"].items())
            update.update(command["update"])
            goto.extend(command["goto"])
        return SubgraphUpdate(out, update, goto or None)

    def _call_as_node(self, parent: Run, task: Task, ctx: RunContext) -> SubgraphUpdate:
        given, child = self._child(parent, task)
        if child is not None:
            for _ in run_sync(child):
                pass
        return self._changes(parent, task, given, child)

    async def _acall_as_node(self, parent: Run, task: Task, ctx: RunContext) -> SubgraphUpdate:
        given, child = self._child(parent, task)
        if child is not None:
            async for _ in run_async(child):
                pass
        return self._changes(parent, task, given, child)

    # -- inspection ------------------------------------------------------------------------------

    def get_graph(self, config: Any = None, *, expand_subgraphs: bool | int = False,
                  xray: bool | int = False) -> GraphView:
        """The graph as a networkx ``MultiDiGraph`` (node ``kind``; edge ``kind``/``label``)
        that also answers LangGraph's calls: ``.edges`` yields edges with ``.source``,
        ``.target``, ``.conditional``; ``draw_mermaid()``, ``draw_mermaid_png()``,
        ``draw_ascii()``, ``to_networkx()`` (see :mod:`graphflow.draw.view`).

        ``expand_subgraphs`` (LangGraph's ``xray``): True (all levels) or a depth puts
        subgraphs' nodes in, as ``parent:child`` with a ``cluster`` attribute. ``config`` is
        accepted for LangGraph's sake (the picture does not depend on it).
        """
        from ..draw.view import GraphView

        depth = expand_subgraphs or xray
        if depth:
            from ..draw import expand_subgraphs as expand

            return GraphView(expand(self._nx, depth))
        return GraphView(self._nx)
