"""What durable waits and entities keep in a checkpointer, and its in-process default.

Three kinds of records live beside the checkpoints (``docs/jobs.md`` tells how they are used):

- **Waits**: one row per durable wait a thread is paused on (a timer, a signal, a job's next
  poll): what wakes the thread (``wake_at``, a signal name), the graph that resumes it, and a
  fresh ``token`` per registration, so that the scheduler that woke a thread deletes only the
  row it saw, never one registered again since.
- **Signals**: a thread's mailbox. ``app.signal(thread, name, payload)`` stores one and marks
  the waits for that name as woken; a wait *claims* the oldest unclaimed signal of its name (the
  claim names the wait, so a wait that runs again after a crash gets the same signal back).
  Signals sent before anything waits for them are kept until a wait claims them.
- **Entities**: keyed state (``kind``, ``key``) with a version, the results of the operations
  applied to it (by operation id, so a retried call is applied once), and per-entity leases (the
  one-writer mechanism of :mod:`graphflow.checkpoint.lease`, in a key space of their own).

:class:`DurableTables` implements all of them in this object, right for a store that lives in
one process (like the base class's leases); the SQL stores override every method with tables
(``graphflow_waits``, ``graphflow_signals``, ``graphflow_entities``, ``graphflow_entity_ops``,
``graphflow_entity_leases``).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..errors import ThreadBusyError

if TYPE_CHECKING:
    from .lease import Holder, Lease, Owner

__all__ = ["MISSING", "DurableTables", "EntityLeases", "WaitRow"]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


#: What a lookup returns when there is nothing (a stored value may itself be None).
MISSING: Any = _Missing()

_LOCK = threading.Lock()  # creates the per-object tables (short critical section)


@dataclass(frozen=True, slots=True)
class WaitRow:
    """A durable wait a thread is paused on: what wakes it, and who resumes it.

    Attributes:
        thread: the paused thread.
        wait_id: the wait's id (the id of the interrupt it paused the run with).
        ns: the namespace of the waiting task (``""``: the thread's own graph).
        graph: the name of the compiled graph that resumes the thread.
        wake_at: when a timer or a timeout fires (seconds since the epoch), or None.
        signal: the signal name it waits for, or None.
        token: fresh per registration.
        woken: a signal for it has arrived: due now.
    """

    thread: str
    wait_id: str
    ns: str = ""
    graph: str = ""
    wake_at: float | None = None
    signal: str | None = None
    token: str = ""
    woken: bool = False

    def due(self, now: float) -> bool:
        return self.woken or (self.wake_at is not None and self.wake_at <= now)


class EntityLeases:
    """The lease interface of a checkpointer (``acquire_lease`` ...) on the key space of
    entities, so that :class:`~graphflow.checkpoint.lease.Lease` (its renewals, dead-holder
    takeover and waiting) serves entities unchanged."""

    __slots__ = ("saver",)

    def __init__(self, saver: DurableTables) -> None:
        self.saver = saver

    def acquire_lease(self, key: str, owner: Owner, ttl: float, *,
                      takeover: Owner | None = None) -> Holder | None:
        return self.saver._acquire_entity_lease(key, owner, ttl, takeover)

    def renew_lease(self, key: str, owner: Owner, ttl: float) -> bool:
        return self.saver._renew_entity_lease(key, owner, ttl)

    def release_lease(self, key: str, owner: Owner) -> None:
        self.saver._release_entity_lease(key, owner)


class _Tables:
    """The in-process records of one checkpointer."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waits: dict[str, dict[str, WaitRow]] = {}  # thread -> wait id -> row
        self.signals: dict[str, list[list[Any]]] = {}  # thread -> [seq, name, payload, claim]
        self.seq = itertools.count(1)
        self.entities: dict[tuple[str, str], tuple[Any, int]] = {}  # -> (state, version)
        self.ops: dict[tuple[str, str], dict[str, tuple[Any, float]]] = {}
        self.leases: dict[str, tuple[Owner, float, float]] = {}  # entity leases


class DurableTables:
    """Waits, signals and entities kept in this object (see the module docstring).

    Every method is atomic. The SQL stores override them all with their tables.
    """

    _durable: _Tables

    def _tables(self) -> _Tables:
        try:
            return self._durable
        except AttributeError:
            with _LOCK:
                if "_durable" not in self.__dict__:
                    self._durable = _Tables()
            return self._durable

    # -- waits ------------------------------------------------------------------------------

    def put_wait(self, row: WaitRow) -> None:
        """Register (or register again: same thread and wait id) a wait; ``row.woken`` is kept
        when a signal for it is already waiting in the mailbox."""
        t = self._tables()
        with t.lock:
            pending = row.signal is not None and any(
                s[1] == row.signal and s[3] is None for s in t.signals.get(row.thread, ()))
            t.waits.setdefault(row.thread, {})[row.wait_id] = replace(
                row, woken=row.woken or pending)

    def delete_wait(self, thread: str, wait_id: str, token: str | None) -> None:
        """Forget a wait, if it is still the registration ``token`` names (any registration:
        ``token=None``, for a wait that has resolved)."""
        t = self._tables()
        with t.lock:
            rows = t.waits.get(thread)
            if rows is not None and wait_id in rows and (token is None
                                                         or rows[wait_id].token == token):
                del rows[wait_id]
                if not rows:
                    del t.waits[thread]

    def waits(self, thread: str) -> list[WaitRow]:
        """The waits ``thread`` is paused on."""
        t = self._tables()
        with t.lock:
            return sorted(t.waits.get(thread, {}).values(), key=lambda r: r.wait_id)

    def due_waits(self, now: float, graphs: Sequence[str], limit: int = 100) -> list[WaitRow]:
        """Waits of the named graphs that are due at ``now`` (signalled, or their time
        passed), soonest first."""
        t = self._tables()
        names = set(graphs)
        with t.lock:
            rows = [r for rows in t.waits.values() for r in rows.values()
                    if r.graph in names and r.due(now)]
        rows.sort(key=lambda r: (not r.woken, r.wake_at or 0.0))
        return rows[:limit]

    def next_wake(self, graphs: Sequence[str]) -> float | None:
        """When the soonest wait of the named graphs is due (0.0: a signalled one is), or
        None if they wait for nothing timed."""
        t = self._tables()
        names = set(graphs)
        with t.lock:
            times = [0.0 if r.woken else r.wake_at for rows in t.waits.values()
                     for r in rows.values() if r.graph in names
                     and (r.woken or r.wake_at is not None)]
        return min(times, default=None)  # type: ignore[type-var]

    def listen_wakes(self, graphs: Sequence[str],
                     on_wake: Callable[[], None]) -> Callable[[], None] | None:
        """Have ``on_wake()`` called (from another thread) whenever another process registers
        a wait or sends a signal for one of ``graphs``, so that a scheduler looks at once; a
        function that stops it, or None when this store cannot tell (a scheduler then sees
        such changes at its next poll). In-process changes need no listening
        (:func:`graphflow.engine.waits.watch`). Here: None."""
        return None

    # -- signals ----------------------------------------------------------------------------

    def put_signal(self, thread: str, name: str, payload: Any) -> int:
        """Store a signal for ``thread`` and mark its waits for ``name`` as woken; returns the
        signal's sequence number."""
        t = self._tables()
        with t.lock:
            seq = next(t.seq)
            t.signals.setdefault(thread, []).append([seq, name, payload, None])
            rows = t.waits.get(thread, {})
            for wid, row in list(rows.items()):
                if row.signal == name:
                    rows[wid] = replace(row, woken=True)
            return seq

    def claim_signal(self, thread: str, name: str, wait_id: str) -> Any:
        """The payload of the signal ``wait_id`` claimed before, else of the oldest unclaimed
        signal named ``name`` (claimed now for ``wait_id``); :data:`MISSING` if there is none."""
        t = self._tables()
        with t.lock:
            box = t.signals.get(thread, ())
            for s in box:
                if s[3] == wait_id:
                    return s[2]
            for s in box:
                if s[1] == name and s[3] is None:
                    s[3] = wait_id
                    return s[2]
            return MISSING

    # -- entities ---------------------------------------------------------------------------

    def entity_leases(self) -> EntityLeases:
        """This store's entity leases, in the shape :class:`Lease` expects of a checkpointer."""
        return EntityLeases(self)

    def get_entity(self, kind: str, key: str) -> tuple[Any, int] | None:
        """``(state, version)`` of an entity, or None if it was never written."""
        t = self._tables()
        with t.lock:
            return t.entities.get((kind, key))

    def get_entity_op(self, kind: str, key: str, op_id: str) -> Any:
        """The stored result of operation ``op_id`` on an entity, or :data:`MISSING`."""
        t = self._tables()
        with t.lock:
            found = t.ops.get((kind, key), {}).get(op_id)
            return MISSING if found is None else found[0]

    def put_entity(self, kind: str, key: str, state: Any, *, lease: Lease,
                   op_id: str | None = None, result: Any = None) -> int:
        """Store an entity's new state (and the result of the operation that made it), only
        while ``lease`` holds the entity (``ThreadBusyError(lost=True)`` otherwise); returns
        the new version."""
        t = self._tables()
        with t.lock:
            held = t.leases.get(lease.thread)
            if held is None or held[0].token != lease.owner.token:
                lease.lost = True
                raise ThreadBusyError(lease.thread, None, lost=True)
            version = t.entities.get((kind, key), (None, 0))[1] + 1
            t.entities[(kind, key)] = (state, version)
            if op_id is not None:
                t.ops.setdefault((kind, key), {})[op_id] = (result, time.time())
            return version

    def delete_entity(self, kind: str, key: str) -> None:
        """Forget an entity's state and operation results."""
        t = self._tables()
        with t.lock:
            t.entities.pop((kind, key), None)
            t.ops.pop((kind, key), None)

    def prune_entity_ops(self, older_than: float) -> int:
        """Forget operation results stored more than ``older_than`` seconds ago; how many."""
        t = self._tables()
        cutoff = time.time() - older_than
        gone = 0
        with t.lock:
            for ops in t.ops.values():
                for op_id in [o for o, (_, at) in ops.items() if at < cutoff]:
                    del ops[op_id]
                    gone += 1
        return gone

    def _acquire_entity_lease(self, key: str, owner: Owner, ttl: float,
                              takeover: Owner | None) -> Holder | None:
        t = self._tables()
        return acquire_in(t.leases, t.lock, key, owner, ttl, takeover)

    def _renew_entity_lease(self, key: str, owner: Owner, ttl: float) -> bool:
        t = self._tables()
        return renew_in(t.leases, t.lock, key, owner, ttl)

    def _release_entity_lease(self, key: str, owner: Owner) -> None:
        t = self._tables()
        release_in(t.leases, t.lock, key, owner)

    # -- a thread's records -------------------------------------------------------------------

    def _forget_durable(self, threads: Iterable[str]) -> None:
        """Drop the waits and signals of ``threads`` (with the thread itself)."""
        t = self._tables()
        with t.lock:
            for thread in threads:
                t.waits.pop(thread, None)
                t.signals.pop(thread, None)


# -- leases kept in a dict (the base class's thread leases and the entity leases above) ---------

LeaseTable = dict[str, tuple["Owner", float, float]]  # key -> owner, expiry, since (monotonic)


def acquire_in(table: LeaseTable, lock: threading.Lock, key: str, owner: Owner, ttl: float,
               takeover: Owner | None = None) -> Holder | None:
    """``Checkpointer.acquire_lease`` on a dict of leases guarded by ``lock``."""
    from .lease import Holder

    now = time.monotonic()
    with lock:
        held = table.get(key)
        if (held is None or held[1] < now or held[0].token == owner.token
                or (takeover is not None and held[0] == takeover)):
            table[key] = (owner, now + ttl, now)
            return None
        return Holder(held[0], held[1] - now, now - held[2])


def renew_in(table: LeaseTable, lock: threading.Lock, key: str, owner: Owner,
             ttl: float) -> bool:
    """``Checkpointer.renew_lease`` on a dict of leases."""
    with lock:
        held = table.get(key)
        if held is None or held[0].token != owner.token:
            return False
        table[key] = (owner, time.monotonic() + ttl, held[2])
        return True


def release_in(table: LeaseTable, lock: threading.Lock, key: str, owner: Owner) -> None:
    """``Checkpointer.release_lease`` on a dict of leases."""
    with lock:
        held = table.get(key)
        if held is not None and held[0].token == owner.token:
            del table[key]
