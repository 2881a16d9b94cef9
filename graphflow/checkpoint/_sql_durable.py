"""Waits, signals and entities in SQL tables: :class:`SqlDurableTables`, mixed into the SQL
stores ahead of :class:`~graphflow.checkpoint._sql.SqlCheckpointer`.

Portable SQL with ``?`` placeholders (``_q`` adapts them), like ``_sql.py``; the tables are in
its docstring and created by each store's DDL. Times here are seconds since the epoch from the
callers' clocks (a wait's ``wake_at`` is the waiting node's clock, compared with the scheduler's),
except ``created_at``/``updated_at`` and the leases (the database's clock).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ThreadBusyError
from ._sql import (
    ENTITIES,
    ENTITY_LEASE_SQL,
    ENTITY_LEASES,
    ENTITY_OPS,
    SIGNALS,
    WAITS,
    _any,
    _decode,
    _dumps,
)
from .durable import MISSING, DurableTables, WaitRow

if TYPE_CHECKING:
    from .lease import Holder, Lease, Owner

__all__ = ["SqlDurableTables"]

_WAIT_COLUMNS = "thread, wait_id, ns, graph, wake_at, signal, token, woken"
SQL_PUT_WAIT = (
    f"INSERT INTO {WAITS} ({_WAIT_COLUMNS}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, "
    f"CASE WHEN EXISTS (SELECT 1 FROM {SIGNALS} WHERE thread = ? AND name = ? "
    f"AND claimed_by IS NULL) THEN 1 ELSE ? END, {{now}}) "
    f"ON CONFLICT (thread, wait_id) DO UPDATE SET ns = excluded.ns, graph = excluded.graph, "
    f"wake_at = excluded.wake_at, signal = excluded.signal, token = excluded.token, "
    f"woken = excluded.woken, created_at = excluded.created_at")
SQL_DELETE_WAIT = f"DELETE FROM {WAITS} WHERE thread = ? AND wait_id = ?"
SQL_DELETE_WAIT_TOKEN = SQL_DELETE_WAIT + " AND token = ?"
SQL_WAITS = f"SELECT {_WAIT_COLUMNS} FROM {WAITS} WHERE thread = ? ORDER BY wait_id"
_DUE = (f"SELECT {_WAIT_COLUMNS} FROM {WAITS} WHERE graph IN ({{graphs}}) "
        f"AND (woken = 1 OR wake_at <= ?) ORDER BY woken DESC, wake_at LIMIT ?")
_NEXT = (f"SELECT min(CASE WHEN woken = 1 THEN 0.0 ELSE wake_at END) FROM {WAITS} "
         f"WHERE graph IN ({{graphs}}) AND (woken = 1 OR wake_at IS NOT NULL)")

SQL_PUT_SIGNAL = (f"INSERT INTO {SIGNALS} (thread, name, payload, created_at) "
                  f"VALUES (?, ?, ?, {{now}}) RETURNING seq")
SQL_WAKE_SIGNALLED = f"UPDATE {WAITS} SET woken = 1 WHERE thread = ? AND signal = ?"
SQL_CLAIMED = (f"SELECT payload FROM {SIGNALS} WHERE thread = ? AND claimed_by = ? "
               f"ORDER BY seq LIMIT 1")
SQL_UNCLAIMED = (f"SELECT seq, payload FROM {SIGNALS} WHERE thread = ? AND name = ? "
                 f"AND claimed_by IS NULL ORDER BY seq LIMIT 1")
SQL_CLAIM = f"UPDATE {SIGNALS} SET claimed_by = ? WHERE seq = ? AND claimed_by IS NULL"

SQL_GET_ENTITY = f"SELECT state, version FROM {ENTITIES} WHERE kind = ? AND key = ?"
SQL_GET_OP = f"SELECT result FROM {ENTITY_OPS} WHERE kind = ? AND key = ? AND op_id = ?"
#: Inside the write transaction: touches the lease row (locking it until commit) only while
#: it still names the writer: the fence of an entity's state.
SQL_ENTITY_FENCE = (f"UPDATE {ENTITY_LEASES} SET expires_at = expires_at "
                    f"WHERE entity = ? AND token = ?")
SQL_PUT_ENTITY = (
    f"INSERT INTO {ENTITIES} (kind, key, state, version, updated_at) VALUES (?, ?, ?, 1, {{now}}) "
    f"ON CONFLICT (kind, key) DO UPDATE SET state = excluded.state, "
    f"version = {ENTITIES}.version + 1, updated_at = excluded.updated_at RETURNING version")
SQL_PUT_OP = (f"INSERT INTO {ENTITY_OPS} (kind, key, op_id, result, created_at) "
              f"VALUES (?, ?, ?, ?, {{now}}) ON CONFLICT (kind, key, op_id) DO NOTHING")
SQL_DELETE_ENTITY = tuple(f"DELETE FROM {t} WHERE kind = ? AND key = ?"
                          for t in (ENTITIES, ENTITY_OPS))
SQL_PRUNE_OPS = f"DELETE FROM {ENTITY_OPS} WHERE created_at < {{now}} - ?"


def _row(row: Sequence[Any]) -> WaitRow:
    thread, wait_id, ns, graph, wake_at, signal, token, woken = row
    return WaitRow(thread, wait_id, ns, graph, None if wake_at is None else float(wake_at),
                   signal, token, bool(woken))


class SqlDurableTables(DurableTables):
    """:class:`~graphflow.checkpoint.durable.DurableTables` on the store's tables; needs the
    ``_write``/``_write_one``/``_read``/``_q``/``_lock_thread`` of a
    :class:`~graphflow.checkpoint._sql.SqlCheckpointer`."""

    _write: Any
    _write_one: Any
    _read: Any
    _q: Any
    _lock_thread: Any
    _lease_acquire: Any
    _lease_renew: Any
    _lease_release: Any

    # -- waits ------------------------------------------------------------------------------

    def put_wait(self, row: WaitRow) -> None:
        with self._write_one() as conn:
            conn.execute(self._q(SQL_PUT_WAIT), (
                row.thread, row.wait_id, row.ns, row.graph, row.wake_at, row.signal, row.token,
                row.thread, row.signal, 1 if row.woken else 0))
            self._announce(conn, row.graph)

    def _announce(self, conn: Any, graph: str) -> None:
        """Tell other processes' schedulers of ``graph`` (``""``: of any graph) that a wait
        was registered or signalled, once ``conn``'s transaction commits (here: nothing; see
        :meth:`listen_wakes`)."""

    def delete_wait(self, thread: str, wait_id: str, token: str | None) -> None:
        with self._write_one() as conn:
            if token is None:
                conn.execute(self._q(SQL_DELETE_WAIT), (thread, wait_id))
            else:
                conn.execute(self._q(SQL_DELETE_WAIT_TOKEN), (thread, wait_id, token))

    def waits(self, thread: str) -> list[WaitRow]:
        with self._read() as conn:
            return [_row(r) for r in conn.execute(self._q(SQL_WAITS), (thread,)).fetchall()]

    def due_waits(self, now: float, graphs: Sequence[str], limit: int = 100) -> list[WaitRow]:
        if not graphs:
            return []
        sql = self._q(_DUE.replace("{graphs}", ", ".join("?" * len(graphs))))
        with self._read() as conn:
            rows = conn.execute(sql, (*graphs, now, limit)).fetchall()
        return [_row(r) for r in rows]

    def next_wake(self, graphs: Sequence[str]) -> float | None:
        if not graphs:
            return None
        sql = self._q(_NEXT.replace("{graphs}", ", ".join("?" * len(graphs))))
        with self._read() as conn:
            row = conn.execute(sql, tuple(graphs)).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    # -- signals ----------------------------------------------------------------------------

    def put_signal(self, thread: str, name: str, payload: Any) -> int:
        text = _dumps(f"signal {name!r} to thread {thread!r}", "payload", payload)
        with self._write() as conn:
            self._lock_thread(conn, thread)
            seq = conn.execute(self._q(SQL_PUT_SIGNAL), (thread, name, text)).fetchone()[0]
            if conn.execute(self._q(SQL_WAKE_SIGNALLED), (thread, name)).rowcount:
                self._announce(conn, "")
        return int(seq)

    def claim_signal(self, thread: str, name: str, wait_id: str) -> Any:
        q = self._q
        with self._write() as conn:
            self._lock_thread(conn, thread)
            row = conn.execute(q(SQL_CLAIMED), (thread, wait_id)).fetchone()
            if row is None:
                found = conn.execute(q(SQL_UNCLAIMED), (thread, name)).fetchone()
                if found is None:
                    return MISSING
                conn.execute(q(SQL_CLAIM), (wait_id, found[0]))
                row = (found[1],)
        return _decode(f"thread {thread!r} signal {name!r}", "payload", row[0], _any)

    # -- entities ---------------------------------------------------------------------------

    def get_entity(self, kind: str, key: str) -> tuple[Any, int] | None:
        with self._read() as conn:
            row = conn.execute(self._q(SQL_GET_ENTITY), (kind, key)).fetchone()
        if row is None:
            return None
        state = _decode(f"entity {kind}[{key!r}]", "state", row[0], _any)
        return state, int(row[1])

    def get_entity_op(self, kind: str, key: str, op_id: str) -> Any:
        with self._read() as conn:
            row = conn.execute(self._q(SQL_GET_OP), (kind, key, op_id)).fetchone()
        if row is None:
            return MISSING
        return _decode(f"entity {kind}[{key!r}] operation {op_id!r}", "result", row[0], _any)

    def put_entity(self, kind: str, key: str, state: Any, *, lease: Lease,
                   op_id: str | None = None, result: Any = None) -> int:
        where = f"entity {kind}[{key!r}]"
        text = _dumps(where, "state", state)
        result_text = None if op_id is None else _dumps(where, f"result of {op_id!r}", result)
        q = self._q
        with self._write() as conn:
            fenced = conn.execute(q(SQL_ENTITY_FENCE), (lease.thread, lease.owner.token))
            if not fenced.rowcount:
                lease.lost = True
                raise ThreadBusyError(lease.thread, None, lost=True)
            version = conn.execute(q(SQL_PUT_ENTITY), (kind, key, text)).fetchone()[0]
            if op_id is not None:
                conn.execute(q(SQL_PUT_OP), (kind, key, op_id, result_text))
        return int(version)

    def delete_entity(self, kind: str, key: str) -> None:
        with self._write() as conn:
            for sql in SQL_DELETE_ENTITY:
                conn.execute(self._q(sql), (kind, key))

    def prune_entity_ops(self, older_than: float) -> int:
        with self._write_one() as conn:
            cur = conn.execute(self._q(SQL_PRUNE_OPS), (older_than,))
        return int(cur.rowcount)

    def _acquire_entity_lease(self, key: str, owner: Owner, ttl: float,
                              takeover: Owner | None) -> Holder | None:
        return self._lease_acquire(ENTITY_LEASE_SQL, key, owner, ttl, takeover)

    def _renew_entity_lease(self, key: str, owner: Owner, ttl: float) -> bool:
        return self._lease_renew(ENTITY_LEASE_SQL, key, owner, ttl)

    def _release_entity_lease(self, key: str, owner: Owner) -> None:
        self._lease_release(ENTITY_LEASE_SQL, key, owner)

    def _forget_durable(self, threads: Iterable[str]) -> None:  # delete_thread does it in SQL
        pass

