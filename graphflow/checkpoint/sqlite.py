"""A :class:`Checkpointer` in a SQLite file: durable, zero setup, safe from several threads."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import _sql
from ._sql import (
    CHECKPOINTS,
    ENTITIES,
    ENTITY_LEASES,
    ENTITY_OPS,
    JOURNAL,
    LEASES,
    SIGNALS,
    WAITS,
    WRITES,
    CorruptCheckpointError,
    SqlCheckpointer,
)
from ._sql_durable import SqlDurableTables

_JOURNAL_DDL = """CREATE TABLE IF NOT EXISTS {table} (
        thread TEXT NOT NULL,
        ns TEXT NOT NULL DEFAULT '',
        task_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (thread, ns, task_id, idx)) WITHOUT ROWID"""

# a lease table (the threads' and the entities')
_LEASES_DDL = """CREATE TABLE IF NOT EXISTS {table} (
        {key} TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started TEXT NOT NULL,
        expires_at REAL NOT NULL,
        acquired_at REAL NOT NULL) WITHOUT ROWID"""

__all__ = ["CorruptCheckpointError", "SqliteCheckpointer"]

_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {CHECKPOINTS} (
        seq INTEGER PRIMARY KEY,
        thread TEXT NOT NULL,
        ns TEXT NOT NULL DEFAULT '',
        id TEXT NOT NULL,
        parent_id TEXT,
        step INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        metadata TEXT NOT NULL,
        next TEXT NOT NULL,
        joins TEXT NOT NULL,
        writes TEXT NOT NULL,
        snapshot TEXT,
        snapshot_step INTEGER NOT NULL,
        snapshot_bytes INTEGER NOT NULL,
        delta_bytes INTEGER NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS {WRITES} (
        seq INTEGER PRIMARY KEY,
        thread TEXT NOT NULL,
        ns TEXT NOT NULL DEFAULT '',
        checkpoint_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        node TEXT NOT NULL,
        writes TEXT NOT NULL,
        update_value TEXT NOT NULL,
        goto TEXT NOT NULL)""",
    _JOURNAL_DDL.format(table=JOURNAL),
    _LEASES_DDL.format(table=LEASES, key="thread"),
    f"""CREATE TABLE IF NOT EXISTS {WAITS} (
        thread TEXT NOT NULL,
        wait_id TEXT NOT NULL,
        ns TEXT NOT NULL,
        graph TEXT NOT NULL,
        wake_at REAL,
        signal TEXT,
        token TEXT NOT NULL,
        woken INTEGER NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (thread, wait_id)) WITHOUT ROWID""",
    f"""CREATE TABLE IF NOT EXISTS {SIGNALS} (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        thread TEXT NOT NULL,
        name TEXT NOT NULL,
        payload TEXT NOT NULL,
        claimed_by TEXT,
        created_at REAL NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS {ENTITIES} (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        state TEXT NOT NULL,
        version INTEGER NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (kind, key)) WITHOUT ROWID""",
    f"""CREATE TABLE IF NOT EXISTS {ENTITY_OPS} (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        op_id TEXT NOT NULL,
        result TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (kind, key, op_id)) WITHOUT ROWID""",
    _LEASES_DDL.format(table=ENTITY_LEASES, key="entity"),
)


def _file_of(conn: sqlite3.Connection) -> str:
    """The file a connection's main database is in (an in-memory one has none: refused)."""
    rows = conn.execute("PRAGMA database_list").fetchall()
    path = next((row[2] for row in rows if row[1] == "main"), "")
    if not path:
        raise ValueError("SqliteCheckpointer(conn): the connection is to an in-memory database, "
                         "which another connection cannot reach; pass a file path (or "
                         "':memory:' for a private in-memory store)")
    return str(path)


#: How long a failed switch to WAL mode is retried at most (it does not wait on busy_timeout).
_BUSY_RETRY = 0.002


class SqliteCheckpointer(SqlDurableTables, SqlCheckpointer):
    """Checkpoints in a SQLite database file, with delta storage (see ``docs/durability.md``).

    The file is opened in WAL mode with ``synchronous=NORMAL``: a ``put`` is committed before it
    returns and a crash of the process loses nothing committed. The tables are created on first
    use. Threads of this process share one connection under a lock (measured as fast as one
    connection per thread: the work is bound by the GIL, and one connection has no lifecycle to
    track); other processes may use the same file, waiting on SQLite's busy ``timeout``. Use it
    as a context manager, or call :meth:`close`.

    Args:
        path: the database file (created if missing); ``":memory:"`` for a private, non-durable
            in-memory database. A ``sqlite3.Connection`` to a file (LangGraph's
            ``SqliteSaver(conn)``) stands for that file: the checkpointer opens its own
            connection to it, in WAL mode, and leaves the given one alone.
        snapshot_every: also snapshot the full values every this many steps (default: only the
            adaptive size rule and forks decide).
        timeout: seconds to wait for another process's write lock.
    """

    _integrity_errors = (sqlite3.IntegrityError,)
    _ddl = _DDL
    _migrate_ddl = _sql.namespace_migration(_JOURNAL_DDL)
    _now = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, path: str | os.PathLike[str] | sqlite3.Connection, *,
                 snapshot_every: int | None = None, timeout: float = 30.0) -> None:
        super().__init__(snapshot_every=snapshot_every)
        self.path = _file_of(path) if isinstance(path, sqlite3.Connection) else os.fspath(path)
        self._timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._closed = False

    # -- connection -------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """The connection, opened (and the schema created) on first use; call with the lock."""
        if self._conn is not None:
            return self._conn
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None,
                               check_same_thread=False)
        try:
            deadline = time.monotonic() + self._timeout
            if self.path != ":memory:":
                self._use_wal(conn, deadline)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._create_schema(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _use_wal(self, conn: sqlite3.Connection, deadline: float) -> None:
        """Switch the file to WAL mode. The switch needs a moment alone with the file and SQLite
        does not wait on its busy timeout for it, so processes opening one new file together
        would fail at once with "database is locked": retry until the timeout instead."""
        pause = _BUSY_RETRY
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.1)
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"{self.path!r}: cannot use WAL mode "
                                           f"(journal_mode is {mode!r})")

    def _table_columns(self, conn: Any, table: str) -> set[str]:
        return {row[1] for row in conn.execute(f"PRAGMA table_info({table})").fetchall()}

    def _undecodable(self, exc: Exception) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "decode" in str(exc)

    @contextmanager
    def _careful(self) -> Iterator[None]:
        """Text that is not valid UTF-8 (a tampered row) comes back as UndecodableText instead
        of failing the whole query, so that the error names the thread, checkpoint and column.
        Only while retrying a read that failed so: sqlite3's own decoding, in C, is the fast
        path."""
        with self._lock:
            conn = self._connection()
            conn.text_factory = _sql.UndecodableText.decode_text
            try:
                yield
            finally:
                conn.text_factory = str

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _write_one(self) -> Iterator[sqlite3.Connection]:
        with self._lock:  # the connection is in autocommit mode: one statement, one commit
            yield self._connection()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._connection()

    # -- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent); further use raises RuntimeError."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    def __enter__(self) -> SqliteCheckpointer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteCheckpointer({self.path!r}, snapshot_every={self.snapshot_every!r})"
