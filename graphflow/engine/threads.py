"""Reading and editing a compiled graph's threads: state, history, updates and forks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..checkpoint.base import Checkpoint, Checkpointer, StateSnapshot, new_checkpoint_id
from ..checkpoint.lease import Lease
from ..errors import GraphflowError, InvalidUpdateError
from .ids import check_checkpoint_id, check_thread_id
from .merge import apply_writes, items_of
from .run import Run, pending_interrupts, rebuild_values
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

    def _snapshot(self, cp: Checkpoint, values: dict[str, Any]) -> StateSnapshot:
        pending = self._saver().get_writes(cp.thread, cp.id) if cp.next else {}
        return StateSnapshot(
            values=self.schema.view(values), next=tuple(n for n, _, _ in cp.next),
            interrupts=tuple(pending_interrupts(pending)), step=cp.step, checkpoint_id=cp.id,
            parent_id=cp.parent_id, created_at=cp.created_at, metadata=dict(cp.metadata))

    def get_state(self, thread: str, *, checkpoint: str | None = None) -> StateSnapshot | None:
        """The state of ``thread`` at its newest checkpoint (or at ``checkpoint``).

        The snapshot has ``.values``, ``.next`` (nodes due next), ``.interrupts`` (pending
        :class:`Interrupt` objects), ``.step``, ``.checkpoint_id``, ``.parent_id``, ``.created_at``
        and ``.metadata``. None if the thread has no checkpoint.
        """
        chain = self._saver(thread, checkpoint).chain(thread, checkpoint)
        if not chain:
            return None
        return self._snapshot(chain[-1], rebuild_values(self, chain))

    def get_state_history(self, thread: str, *, limit: int | None = None) -> list[StateSnapshot]:
        """The checkpoints of ``thread``, newest first, as snapshots (all branches of it)."""
        saver = self._saver(thread)
        return [self._snapshot(cp, rebuild_values(self, saver.chain(thread, cp.id)))
                for cp in saver.list(thread, limit=limit)]

    def update_state(self, thread: str, values: Any, *, as_node: str | None = None,
                     checkpoint: str | None = None, wait: bool | float = False) -> str:
        """Write ``values`` into ``thread`` as if ``as_node`` had returned them; reducers apply.

        With ``as_node``, the next nodes are those its edges lead to (routers are consulted);
        without, the nodes due next stay as they were. With ``checkpoint``, the write starts a
        new branch from that checkpoint and the old history is left intact. Returns the id of
        the new checkpoint, which is the thread's newest.

        It writes the thread, so it takes the thread's lease: a thread another run is writing
        raises :class:`ThreadBusyError` (``wait``: as for :meth:`invoke`).
        """
        saver = self._saver(thread, checkpoint)
        if as_node is not None and as_node not in self._program.specs:
            raise InvalidUpdateError(f"update_state(as_node={as_node!r}): not a node of the "
                                     f"graph", node=as_node)
        with self._writer(thread, wait) as lease:
            return self._update(saver, lease, thread, values, as_node, checkpoint)

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
        run.branch = new_checkpoint_id()[:12] if checkpoint is not None else \
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

