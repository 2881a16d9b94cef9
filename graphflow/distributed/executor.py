""":class:`RayExecutor`: a graph's tasks, and whole runs, on a Ray cluster."""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..checkpoint.lease import Lease, keeper, this_process
from ..checkpoint.serde import SerializationError, dumps_bytes, loads_bytes
from ..engine.ids import check_thread_id
from ..errors import GraphflowError, InvalidUpdateError, NodeError
from ..types import Command
from ._ray import connect
from .errors import (
    ClusterUnavailableError,
    ExecutorBusyError,
    RemoteError,
    RunStoppedError,
    WorkerLostError,
    decode_error,
)
from .refs import check_ref, fingerprint

if TYPE_CHECKING:
    from ..engine.compiled import CompiledGraph
    from ..engine.run import Run
    from ..engine.task import Task
    from ..graph.nodes import NodeSpec

__all__ = ["RayExecutor", "RunHandle", "ray_node", "submit"]

_OPTION_KEYS = frozenset({"num_cpus", "num_gpus", "memory", "resources", "max_retries",
                          "local"})


def ray_node(*, num_cpus: float = 1, num_gpus: float = 0, memory: int | None = None,
             resources: Mapping[str, float] | None = None, max_retries: int = 3,
             local: bool = False) -> dict[str, Any]:
    """Node metadata saying where and with what a node's tasks run under a
    :class:`RayExecutor`: ``g.add_node("parse", parse, metadata=ray_node(num_cpus=2))``.

    Args:
        num_cpus, num_gpus: what one task reserves on its Ray node.
        memory: bytes one task reserves (Ray schedules by it; it is not a hard limit).
        resources: custom resources one task needs, e.g. ``{"parser": 1}`` (declared on the
            Ray nodes that have them: ``ray start --resources='{"parser": 4}'``).
        max_retries: how many times Ray runs a task again when its worker dies (``kill -9``,
            a lost machine). A node's own exceptions are not retried by Ray: give the node a
            ``RetryPolicy`` for that.
        local: run this node's tasks in the driving process, never on Ray.

    Merge it with other metadata: ``metadata={"kind": "tool", **ray_node(num_cpus=2)}``.
    """
    if local:
        return {"ray": {"local": True}}
    options: dict[str, Any] = {"num_cpus": num_cpus, "max_retries": max_retries}
    if num_gpus:
        options["num_gpus"] = num_gpus
    if memory is not None:
        options["memory"] = memory
    if resources:
        options["resources"] = dict(resources)
    return {"ray": options}


def _node_options(spec: NodeSpec, default: str) -> dict[str, Any] | None:
    """The Ray options of ``spec``'s tasks, or None when they run locally."""
    if spec.subgraph is not None:
        return None  # a subgraph's run stays here; give the subgraph its own executor
    given = spec.metadata.get("ray")
    if given is None:
        return {"num_cpus": 1, "max_retries": 3} if default == "ray" else None
    if given is False or given == "local":
        return None
    if not isinstance(given, Mapping) or not set(given) <= _OPTION_KEYS:
        bad = sorted(set(given) - _OPTION_KEYS) if isinstance(given, Mapping) else given
        raise GraphflowError(
            f"node {spec.name!r}: metadata['ray'] has {bad!r}; use ray_node(num_cpus=..., "
            f"num_gpus=..., memory=..., resources=..., max_retries=..., local=...)")
    if given.get("local"):
        return None
    options = {"num_cpus": 1, "max_retries": 3, **given}
    for key in ("num_cpus", "num_gpus", "memory", "max_retries"):
        value = options.get(key)
        if value is not None and (not isinstance(value, (int, float)) or value < 0):
            raise GraphflowError(f"node {spec.name!r}: ray option {key}={value!r} must be a "
                                 f"number >= 0")
    return options


def _ray_failure(ray: Any, exc: BaseException, what: str) -> BaseException:
    """A graphflow error for a Ray-level failure of a task or run (``what``)."""
    errors = ray.exceptions
    if isinstance(exc, errors.TaskCancelledError):
        return RunStoppedError(f"{what} was stopped before it finished (shutdown or cancel); "
                               f"what it had finished is stored: resume it")
    lost = (errors.WorkerCrashedError, errors.NodeDiedError, errors.OutOfMemoryError,
            errors.ObjectLostError, errors.LocalRayletDiedError)
    if isinstance(exc, errors.RayTaskError):  # graphflow's worker function itself raised
        err: BaseException = RemoteError(f"{what}: the Ray task failed: {str(exc)[:2000]}",
                                         remote_type=type(exc).__name__)
    elif isinstance(exc, lost):
        err = WorkerLostError(
            f"{what}: its Ray worker died and Ray's retries are spent "
            f"({type(exc).__name__}: {str(exc)[:300]}); what it had finished is stored: "
            f"resume it", what=what)
    else:
        err = ClusterUnavailableError(f"{what}: the Ray cluster failed ({type(exc).__name__}: "
                                      f"{str(exc)[:300]})")
    err.__cause__ = exc
    return err


class RayExecutor:
    """Runs a graph's tasks (``app.with_executor(RayExecutor(...))``) and whole runs
    (:func:`submit`) on a Ray cluster.

    Tasks: each task of a step whose node it claims runs as a Ray task with the node's
    resources (:func:`ray_node`); the others run in the driving process at the same time. The
    outcomes come back as graphflow JSON and are stored (pending writes) and merged by the
    engine exactly as local ones: in the order of node name, then ``Send`` index. A task whose
    worker dies is run again by Ray (``max_retries``); its journaled calls are replayed, and
    its finished siblings are not run again.

    Args:
        graph: ``"module:attr"`` of this graph, importable on every Ray worker: a compiled
            graph, or a function ``make(checkpointer)`` returning one (see
            :mod:`graphflow.distributed.refs`). Ray never pickles the graph.
        address: the cluster: None (this process's Ray connection, else ``RAY_ADDRESS`` or the
            cluster ``ray start`` began on this machine), ``"host:port"`` of a head node, or
            ``"local"`` (a one-machine cluster started in this process).
        store: what workers open as the checkpointer (``"postgresql://..."`` or
            ``"sqlite:PATH"``) instead of the graph's own; needed when ``graph`` names a
            factory that builds the graph on a given checkpointer.
        default: where nodes without :func:`ray_node` metadata run: ``"ray"`` or ``"local"``.
        max_tasks: the most tasks of one step in flight on Ray at once (more wait).
        max_runs: the most runs from :func:`submit` in flight at once (more wait, or fail
            with :class:`ExecutorBusyError` after ``submit(..., timeout=)``).
        run_options: Ray options of a run's task (default ``{"num_cpus": 1,
            "max_retries": 3}``).
        init: more ``ray.init`` keywords, used when this executor connects.
    """

    def __init__(self, graph: str, *, address: str | None = None, store: str | None = None,
                 default: str = "ray", max_tasks: int = 1000, max_runs: int = 64,
                 run_options: Mapping[str, Any] | None = None,
                 init: Mapping[str, Any] | None = None) -> None:
        if default not in ("ray", "local"):
            raise ValueError(f"default must be 'ray' or 'local', not {default!r}")
        if max_tasks < 1 or max_runs < 1:
            raise ValueError("max_tasks and max_runs must be >= 1")
        self.graph = check_ref(graph)
        self.address = address
        self.store = store
        self.default = default
        self.max_tasks = max_tasks
        self.max_runs = max_runs
        self.run_options = {"num_cpus": 1, "max_retries": 3, **(run_options or {})}
        self._init = dict(init or {})
        self._options: dict[NodeSpec, dict[str, Any] | None] = {}
        self._fns: dict[str, Any] = {}
        self._prints: weakref.WeakKeyDictionary[CompiledGraph, str] = \
            weakref.WeakKeyDictionary()
        self._slots = threading.BoundedSemaphore(max_runs)
        self._lock = threading.Lock()
        self._tasks: set[Any] = set()  # refs of tasks in flight
        self._runs: dict[Any, RunHandle] = {}  # refs of runs in flight
        self._closed = False

    def __repr__(self) -> str:
        return f"RayExecutor({self.graph!r}, address={self.address!r}, default={self.default!r})"

    # -- the executor seam -----------------------------------------------------------------------

    def claims(self, spec: NodeSpec) -> bool:
        """Whether ``spec``'s tasks run on Ray (see :func:`ray_node` and ``default``)."""
        try:
            options = self._options[spec]
        except KeyError:
            options = self._options[spec] = _node_options(spec, self.default)
        return options is not None

    def _ray(self) -> Any:
        if self._closed:
            raise GraphflowError(f"{self!r} was shut down")
        return connect(self.address, **self._init)

    def _task_fn(self, ray: Any, spec: NodeSpec) -> Any:
        fn = self._fns.get(spec.name)
        if fn is None:
            from .worker import run_task

            options = dict(self._options[spec] or {})
            fn = self._fns[spec.name] = ray.remote(run_task).options(
                name=f"graphflow:{spec.name}", **options)
        return fn

    def _run_fn(self, ray: Any) -> Any:
        fn = self._fns.get("")  # no node has the empty name
        if fn is None:
            from .worker import run_thread

            fn = self._fns[""] = ray.remote(run_thread).options(name="graphflow:run",
                                                               **self.run_options)
        return fn

    def _fingerprint(self, graph: CompiledGraph) -> str:
        fp = self._prints.get(graph)
        if fp is None:
            fp = self._prints[graph] = fingerprint(graph)
        return fp

    def _request(self, run: Run) -> bytes:
        """What every task of ``run``'s current step shares."""
        if run.thread is not None:
            from ..checkpoint.memory import MemoryCheckpointer

            if isinstance(run.checkpointer, MemoryCheckpointer):
                raise GraphflowError(
                    f"thread {run.thread!r}: tasks on Ray journal their calls in the run's "
                    f"checkpointer, which workers must share; a MemoryCheckpointer lives in "
                    f"this process only (use PostgresCheckpointer)")
        modes = [m for m in ("custom", "messages") if run.wants(m)]
        try:
            return dumps_bytes({
                "graph": self.graph, "store": self.store, "fp": self._fingerprint(run.graph),
                "thread": run.thread, "ns": run.ns, "step": run.step,
                "checkpoint_id": run.checkpoint_id, "run_id": run.run_id, "branch": run.branch,
                "context": run.context, "budget": run.token_budget, "usage": run.usage,
                "usage_base": run.usage_base, "modes": modes})
        except SerializationError as exc:
            raise SerializationError(f"context= cannot travel to Ray workers: {exc}",
                                     path=exc.path) from exc

    def run(self, run: Run, tasks: list[Task]) -> None:
        """Run ``tasks`` as Ray tasks (at most ``max_tasks`` at once); record each outcome and
        hand it to the engine as it arrives (see :class:`graphflow.engine.executor.Executor`).
        """
        ray = self._ray()
        common = ray.put(self._request(run))
        values = None
        if any(t.index < 0 for t in tasks):  # edge-triggered tasks read the state
            try:
                values = ray.put(dumps_bytes(run.values))
            except SerializationError as exc:
                raise SerializationError(f"the state cannot travel to Ray workers: {exc}",
                                         path=exc.path) from exc
        by_ref: dict[Any, Task] = {}
        pending: list[Any] = []
        try:
            for t in tasks:
                while len(pending) >= self.max_tasks:
                    pending = self._collect(ray, run, pending, by_ref)
                try:
                    one = dumps_bytes({"node": t.name, "index": t.index,
                                       "input": t.input if t.index >= 0 else None})
                except SerializationError as exc:
                    t.error = InvalidUpdateError(
                        f"node {t.name!r}: Send argument #{t.index} cannot travel to a Ray "
                        f"worker: {exc}", node=t.name)
                    run.task_finished(t)
                    continue
                ref = self._task_fn(ray, t.spec).remote(common, one, values)
                by_ref[ref] = t
                pending.append(ref)
                with self._lock:
                    self._tasks.add(ref)
            while pending:
                pending = self._collect(ray, run, pending, by_ref)
        finally:
            with self._lock:
                self._tasks.difference_update(by_ref)
            for ref in pending:  # the step failed: what is still running is not wanted
                ray.cancel(ref)

    def _collect(self, ray: Any, run: Run, pending: list[Any], by_ref: dict[Any, Task]
                 ) -> list[Any]:
        """Wait for at least one of ``pending``; hand every finished one to the engine."""
        try:
            ready, rest = ray.wait(pending, num_returns=1)
            if rest:
                more, rest = ray.wait(rest, num_returns=len(rest), timeout=0)
                ready += more
        except Exception as exc:
            raise _ray_failure(ray, exc, "a step's Ray tasks") from exc
        for ref in ready:
            task = by_ref.pop(ref)
            with self._lock:
                self._tasks.discard(ref)
            try:
                blob = ray.get(ref)
            except ray.exceptions.RayError as exc:
                err = _ray_failure(ray, exc, f"node {task.name!r}")
                if isinstance(err, ClusterUnavailableError):
                    raise err from exc
                task.error = NodeError(task.name, str(err))
                task.error.__cause__ = err
            else:
                _apply(run, task, blob)
                continue
            run.task_finished(task)
        return rest

    # -- runs --------------------------------------------------------------------------------

    def submit(self, app: CompiledGraph, input: Any, *, thread: str, context: Any = None,
               recursion_limit: int | None = None, token_budget: int | None = None,
               wait: bool | float = False, timeout: float | None = None) -> RunHandle:
        """See :func:`submit`."""
        from ..checkpoint.memory import MemoryCheckpointer

        saver = app.checkpointer
        if saver is None or isinstance(saver, MemoryCheckpointer):
            raise GraphflowError(
                "submit() runs the thread on Ray workers, which must share its checkpointer: "
                "compile the graph with a PostgresCheckpointer (not "
                f"{type(saver).__name__ if saver else 'none'})")
        check_thread_id(thread)
        if isinstance(input, Command) and (input.update is not None or input.goto):
            raise GraphflowError("as a run's input, Command only carries resume=...")
        ray = self._ray()
        sub = os.urandom(8).hex()
        # the thread first (busy: ThreadBusyError at once), renewed here until Ray has the run
        reservation = Lease(saver, thread, saver.lease_ttl, this_process(f"{sub}/submit"))
        for pause in reservation.acquire(wait):
            time.sleep(pause)
        if not self._slots.acquire(timeout=timeout):  # None: wait as long as it takes
            reservation.release()
            raise ExecutorBusyError(
                f"{self.max_runs} runs are in flight (max_runs) and none finished within "
                f"{timeout} s; raise max_runs or wait longer (submit(..., timeout=None))")
        try:
            head = saver.get(thread)
            saver.put_journal(thread, f"__submit__/{sub}", 0,
                              {"head": head.id if head is not None else None})
            resuming = isinstance(input, Command)
            owner = reservation.owner
            request = dumps_bytes({
                "graph": self.graph, "store": self.store, "fp": self._fingerprint(app),
                "thread": thread, "sub": sub,
                "reservation": [owner.token, owner.host, owner.pid, owner.started],
                "patience": 2 * saver.lease_ttl + 5, "resuming": resuming,
                "input": None if resuming else input,
                "resume": input.resume if resuming else None,
                "context": context, "recursion_limit": recursion_limit, "budget": token_budget})
            ref = self._run_fn(ray).remote(request)
        except BaseException:
            self._slots.release()
            reservation.release()
            raise
        keeper().discard(reservation)  # no longer renewed here: the worker takes it over
        handle = RunHandle(self, ref, thread)
        with self._lock:
            self._runs[ref] = handle
        ref.future().add_done_callback(lambda _: self._finished(ref))
        return handle

    def _finished(self, ref: Any) -> None:
        with self._lock:
            gone = self._runs.pop(ref, None)
        if gone is not None:
            self._slots.release()

    def in_flight(self) -> tuple[int, int]:
        """(runs, tasks) this executor has on the cluster right now."""
        with self._lock:
            return len(self._runs), len(self._tasks)

    def shutdown(self, *, grace: float = 30.0) -> list[str]:
        """Stop: accept no more work; give runs in flight ``grace`` seconds to finish; then stop
        the rest (and every task in flight) and return their threads.

        Every stopped run is resumable: its finished steps are checkpointed, the finished
        tasks of its current step are stored (pending writes), journaled results are kept, and
        its lease is released (or, if its worker had to be killed, taken over by the next
        writer). Resume with ``submit(app, None, thread=...)`` or ``invoke(None, thread=...)``.
        """
        self._closed = True
        from ._ray import import_ray

        ray = import_ray()
        if not ray.is_initialized():
            return []
        with self._lock:
            runs = list(self._runs)
            tasks = list(self._tasks)
        if runs and grace > 0:
            ray.wait(runs, num_returns=len(runs), timeout=grace)
        with self._lock:
            left = [self._runs[r] for r in runs if r in self._runs]
        for ref in [h._ref for h in left] + tasks:
            ray.cancel(ref)
        stuck = [h._ref for h in left]
        if stuck:
            _, stuck = ray.wait(stuck, num_returns=len(stuck), timeout=10)
        for ref in stuck:  # a node body that ignores the cancel: end its worker
            ray.cancel(ref, force=True)
        return [h.thread for h in left]


def _apply(run: Run, task: Task, blob: bytes) -> None:
    """Record a task's outcome from its worker on ``task``; hand it to the engine."""
    data = loads_bytes(blob)
    usage, base = data.get("usage"), data.get("usage_base")
    if usage and any(usage):
        run.add_usage(*usage)
    if base and any(base):
        run.add_usage(*base, earlier=True)
    for mode, payload in data.get("events") or ():
        run.emit(mode, payload)
    error = data.get("error")
    if error is not None:
        exc = decode_error(error)
        if isinstance(exc, RemoteError):  # a node's own exception: it cannot travel as itself
            wrapped = NodeError(task.name, f"node {task.name!r} failed: {exc}")
            wrapped.__cause__ = exc
            exc = wrapped
        task.error = exc
    elif data.get("interrupts"):
        task.interrupts = data["interrupts"]
    else:
        task.writes = data["writes"]
        task.update = data.get("update", task.writes)
        task.goto = data.get("goto")
    run.task_finished(task)


class RunHandle:
    """A run submitted to Ray (see :func:`submit`).

    Attributes:
        thread: the run's thread.
    """

    def __init__(self, executor: RayExecutor, ref: Any, thread: str) -> None:
        self._executor = executor
        self._ref = ref
        self.thread = thread

    def __repr__(self) -> str:
        return f"<RunHandle thread={self.thread!r} done={self.done()}>"

    def done(self) -> bool:
        """Whether the run has ended (finished, failed or stopped)."""
        from ._ray import import_ray

        ready, _ = import_ray().wait([self._ref], timeout=0)
        return bool(ready)

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the run's end; its final state (as ``invoke`` returns it), or its error
        raised here (a graphflow error of the same type; :class:`RunStoppedError` if it was
        stopped; :class:`WorkerLostError` if its workers kept dying). ``timeout``: seconds,
        then ``TimeoutError`` (the run goes on)."""
        from ._ray import import_ray

        ray = import_ray()
        try:
            blob = ray.get(self._ref, timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            raise TimeoutError(f"run on thread {self.thread!r} not finished after {timeout} s"
                               ) from None
        except ray.exceptions.RayError as exc:
            err = _ray_failure(ray, exc, f"the run on thread {self.thread!r}")
            if isinstance(err, RunStoppedError):
                err.thread = self.thread
            raise err from exc
        data = loads_bytes(blob)
        if "error" in data:
            raise decode_error(data["error"])
        return data["result"]

    def cancel(self) -> None:
        """Stop the run (as :meth:`RayExecutor.shutdown` does); it stays resumable."""
        from ._ray import import_ray

        import_ray().cancel(self._ref)


def submit(app: CompiledGraph, input: Any, *, thread: str, context: Any = None,
           recursion_limit: int | None = None, token_budget: int | None = None,
           wait: bool | float = False, timeout: float | None = None) -> RunHandle:
    """Run ``app`` on ``thread`` as one Ray task; returns at once with a :class:`RunHandle`.

    ``app`` carries a :class:`RayExecutor` (``app.with_executor(...)``) and a checkpointer that
    every Ray worker shares (PostgreSQL). A thread has one writer: a busy thread raises
    :class:`~graphflow.ThreadBusyError` here, at once (or waits: ``wait=True`` / seconds), and
    the thread stays reserved for the run until a worker starts it. When the run's worker
    dies (``kill -9``, a lost machine), Ray starts it again on another worker, which resumes
    from the last checkpoint: no finished task runs again, no journaled result is paid again.

    Args:
        input: as for ``invoke``: the input, None to resume the thread, or
            ``Command(resume=...)``.
        context, recursion_limit, token_budget: as for ``invoke`` (``context`` must be
            serializable: it travels as JSON).
        wait: what to do when the thread is busy (as for ``invoke``).
        timeout: seconds to wait for room when ``max_runs`` runs are in flight (None: as
            long as it takes), then :class:`ExecutorBusyError`.
    """
    executor = getattr(app, "executor", None)
    if not isinstance(executor, RayExecutor):
        raise GraphflowError(
            "submit() needs a graph with a RayExecutor: "
            "app.with_executor(RayExecutor('module:attr', ...))")
    return executor.submit(app, input, thread=thread, context=context,
                           recursion_limit=recursion_limit, token_budget=token_budget,
                           wait=wait, timeout=timeout)
