"""What runs inside Ray workers: one task of a step (:func:`run_task`), or a whole run of a
thread (:func:`run_thread`). Requests and answers are graphflow's JSON (``serde``), as bytes.

A task runs in a stand-in of the driver's run (:class:`TaskRun`): same graph, thread, namespace,
step, checkpoint and run id, so the task has the same id, its ``ctx.step`` calls and model calls
use the same journal in the shared checkpointer (a retried task replays what it had paid for),
and ``interrupt()`` finds its answers. The outcome is not stored here: it goes back to the
driver, which stores it as a pending write and merges it like any other task's.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

from ..checkpoint.lease import Lease, Owner, this_process
from ..checkpoint.serde import SerializationError, dumps_bytes, loads_bytes
from ..engine.call import execute_async, execute_sync
from ..engine.merge import items_of
from ..engine.run import Run
from ..engine.task import Task
from ..errors import GraphflowError, NodeError, ThreadBusyError
from ..types import Command
from .errors import encode_error
from .refs import fingerprint, load_graph

if TYPE_CHECKING:
    from ..checkpoint.base import Checkpointer
    from ..engine.compiled import CompiledGraph

__all__ = ["SUBMIT_KEY", "TaskRun", "claim_thread", "run_task", "run_thread"]

#: The journal key (in the thread, namespace "") of a submitted run's marks: #0 written by the
#: driver (the thread's head when it was submitted), #1 by the first worker that started it.
SUBMIT_KEY = "__submit__/{}"
_USAGE = ("input_tokens", "output_tokens", "cost")


class TaskRun(Run):
    """The driver's run as seen by one task on a worker (see the module docstring)."""

    def task_finished(self, task: Task) -> None:
        """Nothing here: the outcome travels back to the driver, which stores it."""


def _graph(req: dict[str, Any]) -> CompiledGraph:
    graph = load_graph(req["graph"], req.get("store"))
    if fingerprint(graph) != req["fp"]:
        raise GraphflowError(
            f"the graph {req['graph']!r} on this Ray worker ({graph.name!r}: "
            f"{sorted(graph._program.specs)}) is not the driver's; deploy the same code on "
            f"every machine of the cluster")
    return graph


def _shared(graph: CompiledGraph, thread: str | None, ref: str) -> Checkpointer | None:
    if thread is None:
        return None
    from ..checkpoint.memory import MemoryCheckpointer

    saver = graph.checkpointer
    if saver is None or isinstance(saver, MemoryCheckpointer):
        raise GraphflowError(
            f"the graph {ref!r} on this Ray worker has {'no' if saver is None else 'an in-memory'}"
            f" checkpointer, but runs on thread {thread!r} need the store the driver uses "
            f"(PostgreSQL): build it with one, or pass store= to the RayExecutor")
    return saver


def _delta(now: dict[str, Any], before: dict[str, Any]) -> list[float]:
    return [now.get(k, 0) - before.get(k, 0) for k in _USAGE]


def run_task(common: bytes, one: bytes, values: bytes | None) -> bytes:
    """Run one task of a step; its outcome (writes, update, goto, interrupts or error, the
    tokens it used and the stream events it made) as JSON bytes."""
    req = loads_bytes(common)
    mine = loads_bytes(one)
    try:
        graph = _graph(req)
        thread = req["thread"]
        run = TaskRun(graph, None, thread=thread, checkpointer=_shared(graph, thread, req["graph"]),
                      context=req["context"], token_budget=req["budget"], modes=req["modes"],
                      nested=True, ns=req["ns"])
        run.step, run.checkpoint_id = req["step"], req["checkpoint_id"]
        run.run_id, run.branch = req["run_id"], req["branch"]
        run.usage, run.usage_base = dict(req["usage"]), dict(req["usage_base"])
        spec = graph._program.specs.get(mine["node"])
        if spec is None:
            raise GraphflowError(f"the graph on this Ray worker has no node {mine['node']!r}")
        if values is not None:
            run.values = loads_bytes(values)
        task = Task(spec, mine["index"], mine["input"])
    except Exception as exc:
        return dumps_bytes({"error": encode_error(exc)})
    if spec.is_async:
        asyncio.run(execute_async(run, task))
    else:
        execute_sync(run, task)
    return _outcome(run, task, req)


def _outcome(run: TaskRun, task: Task, req: dict[str, Any]) -> bytes:
    out: dict[str, Any] = {
        "usage": _delta(run.usage, req["usage"]),
        "usage_base": _delta(run.usage_base, req["usage_base"]),
        "events": run.events,
    }
    if task.error is not None:
        out["error"] = encode_error(task.error)
    elif task.interrupts:
        out["interrupts"] = task.interrupts
    else:
        writes = task.writes
        out["writes"] = writes if type(writes) is dict else [list(kv) for kv in items_of(writes)]
        if task.update is not writes:
            out["update"] = task.update
        out["goto"] = task.goto
    try:
        return dumps_bytes(out)
    except SerializationError as exc:
        err = NodeError(task.name, f"node {task.name!r}: what it returned cannot travel back "
                                   f"from the Ray worker to the driver: {exc}")
        err.__cause__ = exc
        return dumps_bytes({"error": encode_error(err), "usage": out["usage"],
                            "usage_base": out["usage_base"], "events": []})


# -- whole runs ------------------------------------------------------------------------------------

def claim_thread(saver: Checkpointer, thread: str, sub: str, reservation: Owner,
                 patience: float) -> Lease:
    """Take ``thread``'s lease for submission ``sub`` on this worker.

    The driver reserved the thread (a lease with token ``sub/submit``) when it submitted the
    run; this worker takes that reservation over. A retry of the run after its worker died
    finds the dead attempt's lease (token ``sub/...``): taken over at once when that process
    was on this machine and is gone, else (another machine, or a process that still lives)
    after it expires (``lease_ttl``), waiting at most ``patience`` seconds. Any other writer
    makes it fail with :class:`ThreadBusyError`, as ``invoke`` would.
    """
    owner = this_process(f"{sub}/{os.urandom(6).hex()}")
    ttl = saver.lease_ttl
    takeover: Owner | None = reservation
    end = time.monotonic() + patience
    while True:
        holder = saver.acquire_lease(thread, owner, ttl, takeover=takeover)
        if holder is None:
            break
        token = holder.owner.token
        if not token.startswith(sub + "/"):
            raise ThreadBusyError(thread, holder)
        left = end - time.monotonic()
        if left <= 0:
            raise ThreadBusyError(thread, holder, waited=patience)
        if (token == reservation.token or holder.is_dead()) and takeover != holder.owner:
            takeover = holder.owner  # ours to take: the reservation, or a dead attempt's
            continue
        takeover = None  # an attempt that may live (another machine): until it expires
        time.sleep(min(max(holder.expires_in, 0.05), 1.0, left))
    lease = Lease(saver, thread, ttl, owner)
    lease.try_acquire()  # ours already: the process's keeper renews it from now on
    return lease


def _start(saver: Checkpointer, thread: str, sub: str, given: Any) -> Any:
    """The input this attempt runs with: the submitted one, unless an earlier attempt of the
    same submission already stored a step (then None: resume from its last checkpoint)."""
    key = SUBMIT_KEY.format(sub)
    marks = saver.get_journal(thread, key)
    if not marks:
        raise GraphflowError(
            f"thread {thread!r}: this run's submission is not in the Ray worker's store; the "
            f"driver and the workers must use the same checkpointer database")
    head = saver.get(thread)
    if (head.id if head is not None else None) == marks[0]["head"]:
        inp = given
    elif len(marks) > 1:
        inp = None
    else:
        raise GraphflowError(
            f"thread {thread!r} was written by another run after this run was submitted and "
            f"before it started (the submission reserves the thread for lease_ttl); nothing "
            f"was run")
    if len(marks) < 2:
        saver.put_journal(thread, key, 1, {"started": os.getpid()})
    return inp


def run_thread(request: bytes) -> bytes:
    """Run (or resume) one thread to its end; its result, or its error, as JSON bytes."""
    try:
        req = loads_bytes(request)
        graph = _graph(req)
        thread = req["thread"]
        saver = _shared(graph, thread, req["graph"])
        assert saver is not None
        lease = claim_thread(saver, thread, req["sub"], Owner(*req["reservation"]),
                             req["patience"])
        try:
            given = Command(resume=req["resume"]) if req["resuming"] else req["input"]
            run = graph._run(_start(saver, thread, req["sub"], given), None, "submit",
                             thread=thread, context=req["context"],
                             recursion_limit=req["recursion_limit"], token_budget=req["budget"])
        except BaseException:
            lease.release()
            raise
        run.lease = lease
        if graph._has_async:
            asyncio.run(_drive_async(run))
        else:
            from ..engine.sync_driver import run_sync

            for _ in run_sync(run):
                pass
        return dumps_bytes({"result": run.result()})
    except Exception as exc:
        return dumps_bytes({"error": encode_error(exc)})


async def _drive_async(run: Run) -> None:
    from ..engine.async_driver import run_async

    async for _ in run_async(run):
        pass
