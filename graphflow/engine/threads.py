"""Reading and editing a compiled graph's threads: state, history, updates and forks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._random import random_hex
from ..checkpoint.base import (
    Checkpoint,
    Checkpointer,
    SnapshotTask,
    StateSnapshot,
)
from ..checkpoint.lease import Lease
from ..errors import GraphflowError, InvalidUpdateError
from .config import call_options, checkpoint_config
from .ids import check_checkpoint_id, check_thread_id, child_namespace, make_task_id
from .merge import apply_writes, items_of
from .run import INTERRUPT_KEY, Run, rebuild_values
from .sync_driver import plan_sync
from .task import Task

if TYPE_CHECKING:
    from ..graph.schema import StateSchema
    from .program import Program

__all__ = ["Threads"]


class Threads:
    """``get_state``, ``get_state_history``, ``update_state``, ``delete_thread`` and
    ``list_threads`` of :class:`CompiledGraph`."""

    checkpointer: Checkpointer | None
    schema: StateSchema
    _program: Program

    @staticmethod
    def _target(target: str | Mapping[str, Any], checkpoint: str | None,
                where: str) -> tuple[str, str | None]:
        """``(thread, checkpoint)`` from a thread id or a LangGraph config dict."""
        if not isinstance(target, Mapping):
            return target, checkpoint
        opts = call_options(None, target, where=where, checkpoint=checkpoint)
        if opts.thread is None:
            raise GraphflowError(f"{where}: the config names no thread; pass "
                                 f"{{'configurable': {{'thread_id': ...}}}} or a thread id")
        return opts.thread, opts.checkpoint

    def _saver(self, thread: str | None = None, checkpoint: str | None = None) -> Checkpointer:
        if self.checkpointer is None:
            raise GraphflowError("this needs a checkpointer: compile(checkpointer=...)")
        if thread is not None:
            check_thread_id(thread)
        if checkpoint is not None:
            check_checkpoint_id(checkpoint)
        return self.checkpointer

    def _writer(self, thread: str, wait: bool | float) -> Lease:
        """The thread's lease, held for a write made outside a run (one writer per thread)."""
        saver = self._saver(thread)
        return Lease(saver, thread, saver.lease_ttl).hold(wait)

    def _snapshot(self, cp: Checkpoint, values: dict[str, Any],
                  subgraphs: bool = False) -> StateSnapshot:
        saver = self._saver()
        pending = saver.get_writes(cp.thread, cp.id, ns=cp.ns) if cp.next else {}
        branch = cp.metadata.get("branch", "")
        specs, name_ids = self._program.specs, self._program.name_ids
        tasks = []
        for name, index, _ in cp.next:
            task_id = make_task_id(cp.step + 1, name_ids.get(name, name), index, branch)
            write = pending.get(task_id)
            found = write.writes if write is not None else ()
            interrupts = tuple(i for k, v in found if k == INTERRUPT_KEY for i in v)
            result = None if write is None or interrupts else dict(found)
            spec = specs.get(name)
            state = None
            if subgraphs and spec is not None and spec.subgraph is not None:
                state = spec.subgraph.with_checkpointer(saver)._sub_snapshot(
                    cp.thread, child_namespace(cp.ns, task_id))
            tasks.append(SnapshotTask(task_id, name, interrupts, result, state))
        if self.schema.kind == "typeddict":
            view: Any = {k: values[k] for k in self._program.state_keys if k in values}
        else:
            view = self.schema.view(values)
        return StateSnapshot(
            values=view, next=tuple(n for n, _, _ in cp.next),
            interrupts=tuple(i for t in tasks for i in t.interrupts), step=cp.step,
            checkpoint_id=cp.id, parent_id=cp.parent_id, created_at=cp.created_at,
            metadata=dict(cp.metadata), config=checkpoint_config(cp.thread, cp.id, cp.ns),
            parent_config=None if cp.parent_id is None else checkpoint_config(
                cp.thread, cp.parent_id, cp.ns),
            tasks=tuple(tasks))

    def _sub_snapshot(self, thread: str, ns: str) -> StateSnapshot | None:
        """The newest state of this graph's run in namespace ``ns`` of ``thread`` (a subgraph
        task's run), with its own subgraphs' states; None if it stored none."""
        chain = self._saver().chain(thread, ns=ns)
        if not chain:
            return None
        return self._snapshot(chain[-1], rebuild_values(self, chain), subgraphs=True)

    def get_state(self, thread: str | Mapping[str, Any], *, checkpoint: str | None = None,
                  subgraphs: bool = False) -> StateSnapshot | None:
        """The state of ``thread`` at its newest checkpoint (or at ``checkpoint``).

        ``thread`` is a thread id, or a LangGraph config (``{"configurable": {"thread_id":
        ..., "checkpoint_id": ...}}``, such as a snapshot's ``.config``). The snapshot has
        ``.values``, ``.next`` (nodes due next), ``.tasks`` (those tasks, with their ids and
        interrupts), ``.interrupts`` (pending :class:`Interrupt` objects), ``.step``,
        ``.checkpoint_id``, ``.parent_id``, ``.config``, ``.parent_config``, ``.created_at``
        and ``.metadata``. None if the thread has no checkpoint. With ``subgraphs=True``, a due
        task of a subgraph node that has started has its run's snapshot as ``.state`` (an
        interrupted subgraph: where it stopped).
        """
        thread, checkpoint = self._target(thread, checkpoint, "get_state")
        chain = self._saver(thread, checkpoint).chain(thread, checkpoint)
        if not chain:
            return None
        return self._snapshot(chain[-1], rebuild_values(self, chain), subgraphs)

    def get_state_history(self, thread: str | Mapping[str, Any], *, limit: int | None = None,
                          before: str | Mapping[str, Any] | None = None,
                          filter: Mapping[str, Any] | None = None) -> list[StateSnapshot]:
        """The checkpoints of ``thread`` (a thread id or a LangGraph config), newest first, as
        snapshots (all branches of it). The first of a thread is its input checkpoint, whose
        ``next`` is ``("__start__",)``: replay from the start with ``invoke(None,
        history[-1].config)``.

        ``before``: only checkpoints older than this one (an id or a config); ``filter``: only
        those whose metadata holds these items; ``limit``: at most this many.
        """
        thread, _ = self._target(thread, None, "get_state_history")
        saver = self._saver(thread)
        if isinstance(before, Mapping):
            _, before = self._target({"configurable": {"thread_id": thread,
                                      **(before.get("configurable") or {})}}, None,
                                     "get_state_history")
        cps = saver.list(thread, limit=None if before or filter else limit)
        if before is not None:
            ids = [cp.id for cp in cps]
            cps = cps[ids.index(before) + 1:] if before in ids else []
        if filter:
            cps = [cp for cp in cps if all(cp.metadata.get(k) == v for k, v in filter.items())]
        if limit is not None:
            cps = cps[:limit]
        return [self._snapshot(cp, rebuild_values(self, saver.chain(thread, cp.id)))
                for cp in cps]

    def update_state(self, thread: str | Mapping[str, Any], values: Any,
                     as_node: str | None = None, *, checkpoint: str | None = None,
                     wait: bool | float = False) -> Any:
        """Write ``values`` into ``thread`` as if ``as_node`` had returned them; reducers apply.

        With ``as_node``, the next nodes are those its edges lead to (routers are consulted);
        without, the nodes due next stay as they were. With ``checkpoint``, the write starts a
        new branch from that checkpoint and the old history is left intact. Returns the id of
        the new checkpoint, which is the thread's newest; called with a LangGraph config
        instead of a thread id (its ``checkpoint_id``, if any, is ``checkpoint``), returns the
        config of the new checkpoint.

        It writes the thread, so it takes the thread's lease: a thread another run is writing
        raises :class:`ThreadBusyError` (``wait``: as for :meth:`invoke`).
        """
        config_form = isinstance(thread, Mapping)
        thread, checkpoint = self._target(thread, checkpoint, "update_state")
        saver = self._saver(thread, checkpoint)
        if as_node is not None and as_node not in self._program.specs:
            raise InvalidUpdateError(f"update_state(as_node={as_node!r}): not a node of the "
                                     f"graph", node=as_node)
        with self._writer(thread, wait) as lease:
            new = self._update(saver, lease, thread, values, as_node, checkpoint)
        return checkpoint_config(thread, new) if config_form else new

    def _update(self, saver: Checkpointer, lease: Lease, thread: str, values: Any,
                as_node: str | None, checkpoint: str | None) -> str:
        chain = saver.chain(thread, checkpoint)
        if not chain:
            raise GraphflowError(f"thread {thread!r} has no checkpoint"
                                 + (f" {checkpoint!r}" if checkpoint else "") + " to update")
        base = chain[-1]
        writes = self.schema.input_writes(values)
        writer = as_node or "__update__"
        run = Run(self, None, thread=thread)
        run.values = apply_writes(self.schema, rebuild_values(self, chain), ((writer, writes),))
        run.step, run.checkpoint_id = base.step, base.id
        run.joins_seen = {int(i): set(s) for i, s in base.joins.items()}
        run.branch = random_hex(48) if checkpoint is not None else \
            base.metadata.get("branch", "")
        run._step_writes = [(writer, k, v) for k, v in items_of(writes)]
        source = "fork" if checkpoint is not None else "update"
        if as_node is None:
            # the same step, the same due tasks: what they stored (finished writes, interrupts,
            # a breakpoint) still stands, unless this starts a new branch
            run.plan(source=source)
            cp = run.take_checkpoint()  # no task ran: nothing deferred
            assert cp is not None
            cp.next = list(base.next)
            carried = saver.get_writes(thread, base.id) if checkpoint is None else {}
            saver.put(cp, lease=lease)
            for write in carried.values():
                saver.put_writes(thread, cp.id, write)
            return cp.id
        else:
            run.step += 1
            done = Task(self._program.specs[as_node])
            done.writes = writes
            branches = run.route_from([done])
            if any(b.is_async for b in branches):
                raise GraphflowError("update_state(as_node=...) cannot call async routers")
            run.tasks = []
            plan_sync(run, branches, source)
            cp = run.take_checkpoint()  # no task ran: nothing deferred
            assert cp is not None
        saver.put(cp, lease=lease)
        return cp.id

    def delete_thread(self, thread: str, *, wait: bool | float = False) -> None:
        """Forget every checkpoint of ``thread`` (its subgraphs' too). A thread another run is
        writing raises :class:`ThreadBusyError` (``wait``: as for :meth:`invoke`)."""
        with self._writer(thread, wait):
            self._saver().delete_thread(thread)

    def signal(self, thread: str, name: str, payload: Any = None) -> int:
        """Send the signal ``name`` (with ``payload``) to ``thread``: a node waiting in
        ``ctx.wait_for_signal(name)`` continues with ``payload`` (a scheduler wakes the thread:
        ``graphflow worker``). A signal sent before anything waits for it stays in the thread's
        mailbox until a wait takes it. It writes no checkpoint, so it needs no lease: send it
        while a run writes the thread. Returns the signal's sequence number."""
        saver = self._saver(thread)
        if not isinstance(name, str) or not name:
            raise ValueError(f"signal name must be a non-empty str, got {name!r}")
        seq = saver.put_signal(thread, name, payload)
        from .waits import notify

        notify(saver)
        return seq

    async def asignal(self, thread: str, name: str, payload: Any = None) -> int:
        """Async :meth:`signal`."""
        import asyncio

        return await asyncio.to_thread(self.signal, thread, name, payload)

    def list_threads(self) -> list[str]:
        """The threads the checkpointer holds, sorted."""
        return self._saver().threads()

