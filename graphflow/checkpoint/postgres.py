"""A :class:`Checkpointer` in PostgreSQL (psycopg 3 with a connection pool).

Needs the ``postgres`` extra: ``pip install "graphflow[postgres]"``.

The JSON columns are TEXT, not JSONB: the stored text is exactly what ``serde.dumps`` wrote, so
it loads back identically (JSONB re-orders object keys, which would change the key order of
dicts in the state, and it drops duplicate keys), nothing is parsed twice on the way in or out,
and the storage policy's byte accounting is the same as SQLite's. Ad-hoc queries can still cast,
e.g. ``metadata::jsonb ->> 'source'``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

# a lease table (the threads' and the entities')
_LEASES_DDL = """CREATE TABLE IF NOT EXISTS {table} (
        {key} TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        host TEXT NOT NULL,
        pid BIGINT NOT NULL,
        started TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        acquired_at DOUBLE PRECISION NOT NULL)"""

__all__ = ["CorruptCheckpointError", "PostgresCheckpointer"]

log = logging.getLogger("graphflow.checkpoint")

#: The channel of wake-up notices: a wait registered or signalled (payload: its graph's name,
#: or "" for any graph), sent when the transaction commits.
WAKE_CHANNEL = "graphflow_wake"
#: The ``application_name`` of the listening connections (``pg_stat_activity`` shows them).
LISTENER_NAME = "graphflow-wake-listener"

# Advisory lock keys (the two-int4 key space, apart from applications' bigint keys): one for
# creating the schema, one class for "a writer of this thread".
_LOCK_CLASS_SCHEMA = 0x67660000
_LOCK_CLASS_THREAD = 0x67660001

_JOURNAL_DDL = """CREATE TABLE IF NOT EXISTS {table} (
        thread TEXT NOT NULL,
        ns TEXT NOT NULL DEFAULT '',
        task_id TEXT NOT NULL,
        idx BIGINT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (thread, ns, task_id, idx))"""

_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {CHECKPOINTS} (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        thread TEXT NOT NULL,
        ns TEXT NOT NULL DEFAULT '',
        id TEXT NOT NULL,
        parent_id TEXT,
        step BIGINT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        metadata TEXT NOT NULL,
        next TEXT NOT NULL,
        joins TEXT NOT NULL,
        writes TEXT NOT NULL,
        snapshot TEXT,
        snapshot_step BIGINT NOT NULL,
        snapshot_bytes BIGINT NOT NULL,
        delta_bytes BIGINT NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS {WRITES} (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
        wake_at DOUBLE PRECISION,
        signal TEXT,
        token TEXT NOT NULL,
        woken INTEGER NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (thread, wait_id))""",
    f"""CREATE TABLE IF NOT EXISTS {SIGNALS} (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        thread TEXT NOT NULL,
        name TEXT NOT NULL,
        payload TEXT NOT NULL,
        claimed_by TEXT,
        created_at DOUBLE PRECISION NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS {ENTITIES} (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        state TEXT NOT NULL,
        version BIGINT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (kind, key))""",
    f"""CREATE TABLE IF NOT EXISTS {ENTITY_OPS} (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        op_id TEXT NOT NULL,
        result TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (kind, key, op_id))""",
    _LEASES_DDL.format(table=ENTITY_LEASES, key="entity"),
    # The chain walk's parent lookup (see _WALK_LINK).
    f"CREATE INDEX IF NOT EXISTS {CHECKPOINTS}_by_id ON {CHECKPOINTS} (id)",
)

# How the chain walk finds a row's parent on PostgreSQL. Joined on (thread, ns, id), the planner
# costs the (thread, ns, seq) index the same as the unique (thread, ns, id) one whenever most
# threads are short (its estimate for "the rows of one thread" is the average thread), takes it,
# and then scans the whole thread for every link: a 10,000-step thread took 10 s to read. Here the
# id alone is the index condition (ids are random, so one row), and thread and ns are compared
# as expressions no index serves, so no other plan is on offer.
_WALK_LINK = ("c.id = w.parent_id WHERE w.snapshot IS NULL AND c.thread || '' = w.thread"
              " AND c.ns || '' = w.ns AND c.seq + 0 < w.seq")


_INSTALL_HINT = 'pip install "graphflow[postgres]"'


def _import_driver() -> tuple[Any, Any]:
    try:
        import psycopg
        import psycopg_pool
    except ImportError as exc:
        raise ImportError(
            f"PostgresCheckpointer needs psycopg 3 and psycopg-pool, which are not installed "
            f"({exc}); install them with: {_INSTALL_HINT}") from exc
    return psycopg, psycopg_pool


def _configure_text(conn: psycopg.Connection[Any]) -> None:
    """Make text come back as str, whatever the database's encoding.

    A UTF8 (or other real encoding) database validates text on the way in, so it cannot hold
    invalid UTF-8: the client encoding is set to UTF8 and psycopg's own loaders are kept. An
    ``SQL_ASCII`` database stores bytes unchecked and psycopg would return every text value as
    bytes: there text is decoded as UTF-8 here, and a value that is not valid UTF-8 (a tampered
    row) comes back as :class:`~._sql.UndecodableText`, which the reader reports as a corrupted
    column.
    """
    if conn.info.parameter_status("server_encoding") != "SQL_ASCII":
        conn.execute("SET client_encoding TO 'UTF8'")
        return
    from psycopg.adapt import Loader

    class TextLoader(Loader):
        def load(self, data: Any) -> str | _sql.UndecodableText:
            return _sql.UndecodableText.decode_text(bytes(data))

    for type_name in ("text", "varchar", "name"):
        conn.adapters.register_loader(type_name, TextLoader)


class PostgresCheckpointer(SqlDurableTables, SqlCheckpointer):
    """Checkpoints in PostgreSQL, with delta storage (see ``docs/durability.md``).

    Connections come from a ``psycopg_pool.ConnectionPool``, opened (and the tables created in
    the connection's current schema) on first use. Every method is one transaction, committed
    before it returns; writers of one thread are serialized with an advisory lock, so puts from
    several processes keep each thread's insertion order. Safe from several threads; the async
    methods run the sync ones in a worker thread. Use it as a context manager, or call
    :meth:`close`.

    Args:
        dsn: a libpq connection string or URL, e.g. ``"postgresql://user@host:5432/db"``
            (``options=-csearch_path=myschema`` puts the tables in another schema).
        snapshot_every: also snapshot the full values every this many steps (default: only the
            adaptive size rule and forks decide).
        pool_size: the most connections the pool opens.
        timeout: seconds to wait for the database (first connection) or a free connection.

    Thread names cannot contain NUL characters (PostgreSQL text cannot hold them).
    """

    _placeholder = "%s"
    _ddl = _DDL
    _migrate_ddl = _sql.namespace_migration(_JOURNAL_DDL)
    _walk = _sql.walk_sql(_WALK_LINK)
    _now = "extract(epoch from clock_timestamp())::float8"

    def __init__(self, dsn: str, *, snapshot_every: int | None = None, pool_size: int = 4,
                 timeout: float = 30.0) -> None:
        psycopg, psycopg_pool = _import_driver()
        super().__init__(snapshot_every=snapshot_every)
        if pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, not {pool_size!r}")
        self._integrity_errors = (psycopg.IntegrityError,)
        self._timeout = timeout
        self._pool: psycopg_pool.ConnectionPool = psycopg_pool.ConnectionPool(
            dsn, min_size=1, max_size=pool_size, kwargs={"autocommit": True},
            configure=self._configure, open=False, timeout=timeout,
            name="graphflow-checkpoints")
        self._setup_lock = threading.Lock()
        self._ready = False
        self._closed = False

    @staticmethod
    def _configure(conn: psycopg.Connection[Any]) -> None:
        conn.execute("SET TIME ZONE 'UTC'")  # created_at comes back in UTC
        _configure_text(conn)

    def _ready_pool(self) -> psycopg_pool.ConnectionPool:
        if self._ready:
            return self._pool
        with self._setup_lock:
            if self._closed:
                raise RuntimeError(f"{self!r} is closed")
            if not self._ready:
                self._pool.open(wait=True, timeout=self._timeout)
                with self._pool.connection() as conn, conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_LOCK_CLASS_SCHEMA,))
                    self._create_schema(conn)
                self._ready = True
        return self._pool

    def _table_columns(self, conn: Any, table: str) -> set[str]:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s", (table,)).fetchall()
        return {row[0] for row in rows}

    def _encode_time(self, value: Any) -> Any:
        return value

    def _lock_thread(self, conn: Any, thread: str) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                     (_LOCK_CLASS_THREAD, thread))

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        with self._ready_pool().connection() as conn, conn.transaction():
            yield conn

    @contextmanager
    def _write_one(self) -> Iterator[psycopg.Connection[Any]]:
        with self._ready_pool().connection() as conn:  # autocommit: one statement, one commit
            yield conn

    @contextmanager
    def _read(self) -> Iterator[psycopg.Connection[Any]]:
        with self._ready_pool().connection() as conn:
            yield conn

    def _announce(self, conn: Any, graph: str) -> None:
        conn.execute("SELECT pg_notify(%s, %s)", (WAKE_CHANNEL, graph))

    def listen_wakes(self, graphs: Sequence[str],
                     on_wake: Callable[[], None]) -> Callable[[], None]:
        """``LISTEN`` for wake-up notices (``NOTIFY``, sent when a wait is registered or
        signalled in any process) on a connection of its own, read by a daemon thread; see
        :meth:`~graphflow.checkpoint.durable.DurableTables.listen_wakes`. Listening has begun
        when this returns."""
        pool = self._ready_pool()
        return _WakeListener(pool.conninfo, graphs, on_wake).stop

    def close(self) -> None:
        """Close the pool (idempotent); further use raises an error."""
        with self._setup_lock:
            self._closed = True
            self._ready = False
            self._pool.close()

    def __enter__(self) -> PostgresCheckpointer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresCheckpointer(snapshot_every={self.snapshot_every!r})"  # no DSN: secrets


class _WakeListener:
    """A connection listening on :data:`WAKE_CHANNEL`; ``on_wake()`` for each notice about one
    of ``graphs`` (or any graph). A lost connection is made again (with a backoff), and then
    ``on_wake()`` is called once, for what was sent meanwhile."""

    def __init__(self, conninfo: str, graphs: Sequence[str],
                 on_wake: Callable[[], None]) -> None:
        self.conninfo = conninfo
        self.graphs = frozenset(graphs)
        self.on_wake = on_wake
        self.stopped = threading.Event()
        self.conn: Any = self._connect()
        self.thread = threading.Thread(target=self._loop, name="graphflow-wake-listener",
                                       daemon=True)
        self.thread.start()

    def _connect(self) -> Any:
        psycopg, _ = _import_driver()
        conn = psycopg.Connection.connect(self.conninfo, autocommit=True,
                                          application_name=LISTENER_NAME)
        try:
            conn.execute(f"LISTEN {WAKE_CHANNEL}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _loop(self) -> None:
        pause = 0.1
        while not self.stopped.is_set():
            try:
                if self.conn is None:
                    self.conn = self._connect()
                    pause = 0.1
                    self.on_wake()
                for notice in self.conn.notifies(timeout=0.5):
                    if not notice.payload or notice.payload in self.graphs:
                        self.on_wake()
                    if self.stopped.is_set():
                        break
            except TypeError as exc:  # psycopg < 3.2: notifies() has no timeout
                log.warning("cannot listen for wake-ups (%s): psycopg >= 3.2 is needed; the "
                            "worker polls", exc)
                break
            except Exception as exc:
                if self.stopped.is_set():
                    break
                log.warning("listening for wake-ups failed (%s); again in %.1f s", exc, pause)
                self._close()
                self.stopped.wait(pause)
                pause = min(pause * 2, 5.0)
        self._close()

    def _close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with suppress(Exception):
                conn.close()

    def stop(self) -> None:
        """Stop listening (the thread ends within about half a second)."""
        self.stopped.set()
        self.thread.join(timeout=10)
