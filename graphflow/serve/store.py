"""The server's own records, in the database of the graphs' checkpointer (SQLite or PostgreSQL).

Tables (JSON columns are TEXT; times are seconds since the epoch by the database's clock, one
clock for every process that shares the database)::

    graphflow_serve_threads  thread_id (PRIMARY KEY), graph, owner, created_at, metadata
    graphflow_serve_runs     run_id (PRIMARY KEY), thread_id, graph, owner, status, input,
                             command, stream_modes, options, base_checkpoint, worker,
                             created_at, started_at, ended_at, attempts, cancel_requested,
                             output, error, usage, metadata
    graphflow_serve_events   run_id, seq, event, data; PRIMARY KEY (run_id, seq)
    graphflow_serve_workers  worker_id (PRIMARY KEY), host, pid, started, seen_at

A run is written here (``pending``) before the request that made it is answered, so a server
that dies never loses one: whoever finds it later (the same server restarted, or another process
on the same PostgreSQL) resumes it or marks it, by the configured policy (``docs/serving.md``).
Every statement goes through the checkpointer's own connections (``_write`` / ``_read``), so the
SQL is written once, with ``?`` placeholders.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..checkpoint._sql import SqlCheckpointer

__all__ = ["ACTIVE", "TERMINAL", "EventRow", "RunRecord", "RunStore", "ThreadRecord"]

THREADS = "graphflow_serve_threads"
RUNS = "graphflow_serve_runs"
EVENTS = "graphflow_serve_events"
WORKERS = "graphflow_serve_workers"

#: Run statuses. A run is ``pending`` until a worker starts it, then ``running``; it ends
#: ``success``, ``error``, ``interrupted`` (paused on an interrupt or a breakpoint; answer it
#: with a new run) or ``cancelled``.
ACTIVE = ("pending", "running")
TERMINAL = ("success", "error", "interrupted", "cancelled")

_SCHEMA_LOCK = (0x67660000, 2)  # a PostgreSQL advisory lock key: creating these tables

_RUN_COLUMNS = ("run_id, thread_id, graph, owner, status, input, command, stream_modes, "
                "options, base_checkpoint, worker, created_at, started_at, ended_at, attempts, "
                "cancel_requested, output, error, usage, metadata")


def _ddl(pg: bool) -> tuple[str, ...]:
    real = "DOUBLE PRECISION" if pg else "REAL"
    big = "BIGINT" if pg else "INTEGER"
    return (
        f"""CREATE TABLE IF NOT EXISTS {THREADS} (
            thread_id TEXT PRIMARY KEY,
            graph TEXT NOT NULL,
            owner TEXT NOT NULL,
            created_at {real} NOT NULL,
            metadata TEXT NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS {RUNS} (
            run_id TEXT PRIMARY KEY,
            thread_id TEXT NOT NULL,
            graph TEXT NOT NULL,
            owner TEXT NOT NULL,
            status TEXT NOT NULL,
            input TEXT NOT NULL,
            command TEXT,
            stream_modes TEXT NOT NULL,
            options TEXT NOT NULL,
            base_checkpoint TEXT,
            worker TEXT NOT NULL,
            created_at {real} NOT NULL,
            started_at {real},
            ended_at {real},
            attempts {big} NOT NULL DEFAULT 0,
            cancel_requested {big} NOT NULL DEFAULT 0,
            output TEXT,
            error TEXT,
            usage TEXT,
            metadata TEXT NOT NULL)""",
        f"CREATE INDEX IF NOT EXISTS {RUNS}_thread ON {RUNS} (thread_id, created_at)",
        f"CREATE INDEX IF NOT EXISTS {RUNS}_status ON {RUNS} (status, worker)",
        f"""CREATE TABLE IF NOT EXISTS {EVENTS} (
            run_id TEXT NOT NULL,
            seq {big} NOT NULL,
            event TEXT NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (run_id, seq))""",
        f"""CREATE TABLE IF NOT EXISTS {WORKERS} (
            worker_id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid {big} NOT NULL,
            started TEXT NOT NULL,
            seen_at {real} NOT NULL)""",
    )


@dataclass
class ThreadRecord:
    thread_id: str
    graph: str
    owner: str
    created_at: float
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunRecord:
    """A run as stored. ``input`` and ``command`` are the request's JSON; ``options`` holds
    ``recursion_limit`` and ``token_budget``."""

    run_id: str
    thread_id: str
    graph: str
    owner: str
    status: str
    input: Any
    command: Any
    stream_modes: list[str]
    options: dict[str, Any]
    base_checkpoint: str | None
    worker: str
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    attempts: int = 0
    cancel_requested: bool = False
    output: Any = None
    error: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True, slots=True)
class EventRow:
    seq: int
    event: str
    data: str  # JSON text, sent as is


def _load(raw: Any, default: Any = None) -> Any:
    return default if raw is None else json.loads(raw)


def _run(row: Sequence[Any]) -> RunRecord:
    return RunRecord(
        run_id=row[0], thread_id=row[1], graph=row[2], owner=row[3], status=row[4],
        input=_load(row[5]), command=_load(row[6]), stream_modes=_load(row[7], []),
        options=_load(row[8], {}), base_checkpoint=row[9], worker=row[10],
        created_at=float(row[11]), started_at=None if row[12] is None else float(row[12]),
        ended_at=None if row[13] is None else float(row[13]), attempts=int(row[14]),
        cancel_requested=bool(row[15]), output=_load(row[16]), error=_load(row[17]),
        usage=_load(row[18]), metadata=_load(row[19], {}))


class BusyThread(Exception):
    """A run was refused: the thread has an active run (``run_id``)."""

    def __init__(self, thread_id: str, run_id: str) -> None:
        super().__init__(thread_id, run_id)
        self.thread_id = thread_id
        self.run_id = run_id


class RunStore:
    """Threads, runs, their events and the live workers, in ``saver``'s database."""

    def __init__(self, saver: SqlCheckpointer) -> None:
        if not isinstance(saver, SqlCheckpointer):
            raise TypeError(f"the server keeps its runs in a SQL database: give it a "
                            f"SqliteCheckpointer or a PostgresCheckpointer, not "
                            f"{type(saver).__name__}")
        self.saver = saver
        self.pg = saver._placeholder != "?"
        self._create()

    # -- plumbing --------------------------------------------------------------------------------

    def _q(self, sql: str) -> str:
        return self.saver._q(sql)

    def _create(self) -> None:
        with self.saver._write() as conn:
            if self.pg:
                conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", _SCHEMA_LOCK)
            for statement in _ddl(self.pg):
                conn.execute(statement)

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.saver._read() as conn:
            return list(conn.execute(self._q(sql), tuple(params)).fetchall())

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self.saver._write_one() as conn:
            return conn.execute(self._q(sql), tuple(params)).rowcount

    def now(self) -> float:
        """The database's clock."""
        return float(self._fetch("SELECT {now}")[0][0])

    # -- threads ---------------------------------------------------------------------------------

    def create_thread(self, thread_id: str, graph: str, owner: str,
                      metadata: dict[str, Any]) -> ThreadRecord | None:
        """Record a new thread; None if the id is taken (by anyone: ids are global)."""
        with self.saver._write() as conn:
            taken = conn.execute(self._q(f"SELECT 1 FROM {THREADS} WHERE thread_id = ?"),
                                 (thread_id,)).fetchall()
            if taken or thread_id in self._checkpointed(conn, thread_id):
                return None
            conn.execute(self._q(f"INSERT INTO {THREADS} (thread_id, graph, owner, created_at, "
                                 f"metadata) VALUES (?, ?, ?, {{now}}, ?)"),
                         (thread_id, graph, owner, json.dumps(metadata)))
        return self.get_thread(thread_id)

    def _checkpointed(self, conn: Any, thread_id: str) -> set[str]:
        """{thread_id} if the checkpointer already holds it (made outside the server)."""
        rows = conn.execute(self._q("SELECT 1 FROM graphflow_checkpoints WHERE thread = ? "
                                    "LIMIT 1"), (thread_id,)).fetchall()
        return {thread_id} if rows else set()

    def get_thread(self, thread_id: str) -> ThreadRecord | None:
        rows = self._fetch(f"SELECT thread_id, graph, owner, created_at, metadata FROM {THREADS} "
                           f"WHERE thread_id = ?", (thread_id,))
        if not rows:
            return None
        r = rows[0]
        return ThreadRecord(r[0], r[1], r[2], float(r[3]), _load(r[4], {}))

    def list_threads(self, owner: str, *, limit: int, offset: int = 0) -> list[ThreadRecord]:
        rows = self._fetch(f"SELECT thread_id, graph, owner, created_at, metadata FROM {THREADS} "
                           f"WHERE owner = ? ORDER BY created_at DESC, thread_id LIMIT ? OFFSET ?",
                           (owner, limit, offset))
        return [ThreadRecord(r[0], r[1], r[2], float(r[3]), _load(r[4], {})) for r in rows]

    def delete_thread(self, thread_id: str) -> None:
        with self.saver._write() as conn:
            conn.execute(self._q(f"DELETE FROM {EVENTS} WHERE run_id IN "
                                 f"(SELECT run_id FROM {RUNS} WHERE thread_id = ?)"),
                         (thread_id,))
            conn.execute(self._q(f"DELETE FROM {RUNS} WHERE thread_id = ?"), (thread_id,))
            conn.execute(self._q(f"DELETE FROM {THREADS} WHERE thread_id = ?"), (thread_id,))

    # -- runs ------------------------------------------------------------------------------------

    def create_run(self, run: RunRecord, *, enqueue: bool) -> RunRecord:
        """Insert ``run`` (pending) unless its thread has an active run and ``enqueue`` is
        False (then :class:`BusyThread`). Atomic across processes: the check and the insert are
        one transaction holding the thread's write lock. A queued run is handed to the worker
        that runs the thread's active run, so one process runs a thread's queue in order."""
        with self.saver._write() as conn:
            self.saver._lock_thread(conn, "serve:" + run.thread_id)
            active = conn.execute(self._q(
                f"SELECT run_id, worker FROM {RUNS} WHERE thread_id = ? AND status IN (?, ?) "
                f"ORDER BY created_at, run_id"), (run.thread_id, *ACTIVE)).fetchall()
            if active and not enqueue:
                raise BusyThread(run.thread_id, active[0][0])
            if active:
                run.worker = active[-1][1]
            conn.execute(self._q(
                f"INSERT INTO {RUNS} ({_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                f"{{now}}, NULL, NULL, 0, 0, NULL, NULL, NULL, ?)"),
                (run.run_id, run.thread_id, run.graph, run.owner, "pending",
                 json.dumps(run.input), None if run.command is None else json.dumps(run.command),
                 json.dumps(run.stream_modes), json.dumps(run.options), run.base_checkpoint,
                 run.worker, json.dumps(run.metadata)))
        stored = self.get_run(run.run_id)
        assert stored is not None
        return stored

    def get_run(self, run_id: str) -> RunRecord | None:
        rows = self._fetch(f"SELECT {_RUN_COLUMNS} FROM {RUNS} WHERE run_id = ?", (run_id,))
        return _run(rows[0]) if rows else None

    def list_runs(self, thread_id: str, *, limit: int, offset: int = 0,
                  status: str | None = None) -> list[RunRecord]:
        where, params = "thread_id = ?", [thread_id]
        if status is not None:
            where, params = where + " AND status = ?", [*params, status]
        rows = self._fetch(f"SELECT {_RUN_COLUMNS} FROM {RUNS} WHERE {where} "
                           f"ORDER BY created_at DESC, run_id DESC LIMIT ? OFFSET ?",
                           (*params, limit, offset))
        return [_run(r) for r in rows]

    def first_active(self, thread_id: str) -> str | None:
        """The run a thread's queue runs next (or is running)."""
        rows = self._fetch(f"SELECT run_id FROM {RUNS} WHERE thread_id = ? AND status IN (?, ?) "
                           f"ORDER BY created_at, run_id LIMIT 1", (thread_id, *ACTIVE))
        return rows[0][0] if rows else None

    def start_run(self, run_id: str, worker: str, base_checkpoint: str | None) -> bool:
        """pending (or running, when resumed) -> running, by ``worker``; False if the run is no
        longer this worker's to run (cancelled while queued, or claimed by another)."""
        return self._exec(
            f"UPDATE {RUNS} SET status = 'running', started_at = coalesce(started_at, {{now}}), "
            f"attempts = attempts + 1, base_checkpoint = coalesce(base_checkpoint, ?) "
            f"WHERE run_id = ? AND worker = ? AND status IN (?, ?)",
            (base_checkpoint, run_id, worker, *ACTIVE)) == 1

    def finish_run(self, run_id: str, worker: str, status: str, *, output: Any = None,
                   error: dict[str, Any] | None = None,
                   usage: dict[str, Any] | None = None) -> bool:
        return self._exec(
            f"UPDATE {RUNS} SET status = ?, ended_at = {{now}}, output = ?, error = ?, "
            f"usage = ? WHERE run_id = ? AND worker = ? AND status IN (?, ?)",
            (status, None if output is None else json.dumps(output),
             None if error is None else json.dumps(error),
             None if usage is None else json.dumps(usage), run_id, worker, *ACTIVE)) == 1

    def request_cancel(self, run_id: str) -> str | None:
        """Cancel a run: a pending one ends ``cancelled`` at once; a running one is flagged for
        its worker (which stops it at its next step boundary). Returns the status it had."""
        with self.saver._write() as conn:
            rows = conn.execute(self._q(f"SELECT status FROM {RUNS} WHERE run_id = ?"),
                                (run_id,)).fetchall()
            if not rows:
                return None
            status = rows[0][0]
            if status == "pending":
                conn.execute(self._q(
                    f"UPDATE {RUNS} SET status = 'cancelled', ended_at = {{now}}, "
                    f"cancel_requested = 1 WHERE run_id = ?"), (run_id,))
            elif status == "running":
                conn.execute(self._q(f"UPDATE {RUNS} SET cancel_requested = 1 "
                                     f"WHERE run_id = ?"), (run_id,))
            return status

    # -- events ----------------------------------------------------------------------------------

    def add_events(self, run_id: str, rows: Iterable[tuple[int, str, str]]) -> None:
        with self.saver._write() as conn:
            for seq, event, data in rows:
                conn.execute(self._q(f"INSERT INTO {EVENTS} (run_id, seq, event, data) "
                                     f"VALUES (?, ?, ?, ?)"), (run_id, seq, event, data))

    def events_after(self, run_id: str, seq: int, limit: int = 500) -> list[EventRow]:
        rows = self._fetch(f"SELECT seq, event, data FROM {EVENTS} WHERE run_id = ? AND seq > ? "
                           f"ORDER BY seq LIMIT ?", (run_id, seq, limit))
        return [EventRow(int(r[0]), r[1], r[2]) for r in rows]

    def last_seq(self, run_id: str) -> int:
        rows = self._fetch(f"SELECT max(seq) FROM {EVENTS} WHERE run_id = ?", (run_id,))
        return int(rows[0][0] or 0)

    # -- workers ---------------------------------------------------------------------------------

    def heartbeat(self, worker: str, host: str, started: str) -> None:
        with self.saver._write_one() as conn:
            conn.execute(self._q(
                f"INSERT INTO {WORKERS} (worker_id, host, pid, started, seen_at) "
                f"VALUES (?, ?, ?, ?, {{now}}) ON CONFLICT (worker_id) DO UPDATE SET "
                f"seen_at = excluded.seen_at"), (worker, host, os.getpid(), started))

    def forget_worker(self, worker: str) -> None:
        self._exec(f"DELETE FROM {WORKERS} WHERE worker_id = ?", (worker,))

    def my_runs(self, worker: str) -> list[tuple[str, str, str, bool]]:
        """``(run_id, thread_id, status, cancel_requested)`` of the active runs ``worker``
        owns (queued runs handed to it by other processes show up here)."""
        rows = self._fetch(f"SELECT run_id, thread_id, status, cancel_requested FROM {RUNS} "
                           f"WHERE worker = ? AND status IN (?, ?) ORDER BY created_at, run_id",
                           (worker, *ACTIVE))
        return [(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def owners(self) -> list[tuple[str, str, str, int, float]]:
        """The workers owning active runs: ``(worker_id, host, started, pid, silent_for)``,
        ``silent_for`` being the seconds since the worker's last heartbeat (infinite if it has
        none). The caller decides which are dead."""
        rows = self._fetch(
            f"SELECT DISTINCT r.worker, w.host, w.started, w.pid, {{now}} - w.seen_at "
            f"FROM {RUNS} r LEFT JOIN {WORKERS} w ON w.worker_id = r.worker "
            f"WHERE r.status IN (?, ?)", ACTIVE)
        return [(r[0], r[1] or "", r[2] or "", int(r[3] or 0),
                 float("inf") if r[4] is None else float(r[4])) for r in rows]

    def claim(self, dead_worker: str, worker: str) -> list[str]:
        """Take over the active runs of a dead worker; the run ids claimed (claims are
        serialized, so two workers never both take one run)."""
        with self.saver._write() as conn:
            self.saver._lock_thread(conn, "serve:claim")
            rows = conn.execute(self._q(
                f"SELECT run_id FROM {RUNS} WHERE worker = ? AND status IN (?, ?) "
                f"ORDER BY created_at, run_id"), (dead_worker, *ACTIVE)).fetchall()
            conn.execute(self._q(f"UPDATE {RUNS} SET worker = ? WHERE worker = ? "
                                 f"AND status IN (?, ?)"), (worker, dead_worker, *ACTIVE))
            conn.execute(self._q(f"DELETE FROM {WORKERS} WHERE worker_id = ?"), (dead_worker,))
        return [r[0] for r in rows]
