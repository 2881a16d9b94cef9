"""What the SQL checkpointers share: the tables, row <-> record conversion, the delta-storage
policy and the chain walk.

:class:`SqlCheckpointer` implements every :class:`Checkpointer` method once, in portable SQL
written with ``?`` placeholders. A store (``sqlite.py``, ``postgres.py``) only supplies
connections, its DDL, the placeholder style and how a writer locks a thread.

Tables (every JSON column is TEXT holding ``serde.dumps`` output; ``ns`` is the namespace
inside the thread: ``''`` for the thread's own graph, a subgraph run's path otherwise)::

    graphflow_checkpoints  seq (increasing: insertion order), thread, ns, id, parent_id, step,
                           created_at, metadata, next, joins, writes, snapshot (NULL: delta row),
                           snapshot_step, snapshot_bytes, delta_bytes (storage-policy bookkeeping)
                           UNIQUE (thread, ns, id); INDEX (thread, ns, seq)
    graphflow_writes       seq, thread, ns, checkpoint_id, task_id, node, writes, update_value,
                           goto; UNIQUE (thread, ns, checkpoint_id, task_id)
    graphflow_journal      thread, ns, task_id, idx, value; PRIMARY KEY (thread, ns, task_id, idx)
    graphflow_leases       thread (PRIMARY KEY), token, host, pid, started, expires_at,
                           acquired_at (seconds since the epoch, by the database's clock)
    graphflow_waits        thread, wait_id, ns, graph, wake_at, signal, woken, token,
                           created_at; PRIMARY KEY (thread, wait_id); INDEX (wake_at)
    graphflow_signals      seq, thread, name, payload, claimed_by, created_at;
                           INDEX (thread, name, seq)
    graphflow_entities     kind, key, state, version, updated_at; PRIMARY KEY (kind, key)
    graphflow_entity_ops   kind, key, op_id, result, created_at; PRIMARY KEY (kind, key, op_id)
    graphflow_entity_leases  entity (PRIMARY KEY) and the columns of graphflow_leases

Waits, signals and entities are described in ``durable.py``; their statements live in
``_sql_durable.py``.

Leases make one writer per thread (see ``lease.py``). A put made under a lease is one statement:
an ``INSERT ... SELECT ... WHERE EXISTS`` (the lease row still names the writer), so it commits
on its own and fences out a writer that lost its lease; the parent's storage bookkeeping comes
from the lease's cache of the heads it stored, so no lookup precedes it.

Storage policy (see ``docs/durability.md``): every row stores its ``writes``; the ``values``
snapshot is stored when the checkpoint has no stored parent in its thread, when its parent is
not the thread's head (a fork), when ``snapshot_every`` steps have passed since the lineage's
last snapshot, or when the write bytes stored since that snapshot (this row's included) reach
the snapshot's own size. Each row carries its lineage's ``snapshot_step``, ``snapshot_bytes`` and
``delta_bytes``, so a put decides from its parent row alone (one indexed lookup). Bytes are
characters of the stored JSON text.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, NamedTuple, Protocol, TypeVar

from ..errors import GraphflowError, ThreadBusyError
from ..types import Send
from .base import Checkpoint, Checkpointer, PendingWrite
from .lease import Holder, Lease, Owner
from .serde import SerializationError, dumps, loads

_M = TypeVar("_M")

__all__ = ["CorruptCheckpointError", "Lineage", "SqlCheckpointer", "UndecodableText",
           "needs_snapshot"]

CHECKPOINTS = "graphflow_checkpoints"
WRITES = "graphflow_writes"
JOURNAL = "graphflow_journal"
LEASES = "graphflow_leases"
WAITS = "graphflow_waits"
SIGNALS = "graphflow_signals"
ENTITIES = "graphflow_entities"
ENTITY_OPS = "graphflow_entity_ops"
ENTITY_LEASES = "graphflow_entity_leases"

def namespace_migration(journal_ddl: str) -> tuple[str, ...]:
    """The statements that bring tables from before namespaces up to date: add the ``ns``
    column; rebuild the journal, whose key gains it (``journal_ddl``: the dialect's ``CREATE
    TABLE`` of the journal, with a ``{table}`` slot)."""
    return (
        f"ALTER TABLE {CHECKPOINTS} ADD COLUMN ns TEXT NOT NULL DEFAULT ''",
        f"ALTER TABLE {WRITES} ADD COLUMN ns TEXT NOT NULL DEFAULT ''",
        journal_ddl.format(table=JOURNAL + "_v2"),
        f"INSERT INTO {JOURNAL}_v2 (thread, ns, task_id, idx, value) "
        f"SELECT thread, '', task_id, idx, value FROM {JOURNAL}",
        f"DROP TABLE {JOURNAL}",
        f"ALTER TABLE {JOURNAL}_v2 RENAME TO {JOURNAL}",
    )


#: The columns each table must have (checked once, when a store first connects).
TABLE_COLUMNS: dict[str, frozenset[str]] = {
    CHECKPOINTS: frozenset({
        "seq", "thread", "ns", "id", "parent_id", "step", "created_at", "metadata", "next",
        "joins", "writes", "snapshot", "snapshot_step", "snapshot_bytes", "delta_bytes"}),
    WRITES: frozenset({
        "seq", "thread", "ns", "checkpoint_id", "task_id", "node", "writes", "update_value",
        "goto"}),
    JOURNAL: frozenset({"thread", "ns", "task_id", "idx", "value"}),
    LEASES: frozenset({"thread", "token", "host", "pid", "started", "expires_at",
                       "acquired_at"}),
    WAITS: frozenset({"thread", "wait_id", "ns", "graph", "wake_at", "signal", "woken", "token",
                      "created_at"}),
    SIGNALS: frozenset({"seq", "thread", "name", "payload", "claimed_by", "created_at"}),
    ENTITIES: frozenset({"kind", "key", "state", "version", "updated_at"}),
    ENTITY_OPS: frozenset({"kind", "key", "op_id", "result", "created_at"}),
    ENTITY_LEASES: frozenset({"entity", "token", "host", "pid", "started", "expires_at",
                              "acquired_at"}),
}

#: Indexes both stores create (the unique ones are the targets of the upserts below).
INDEXES = (
    f"CREATE UNIQUE INDEX IF NOT EXISTS {CHECKPOINTS}_id ON {CHECKPOINTS} (thread, ns, id)",
    f"CREATE INDEX IF NOT EXISTS {CHECKPOINTS}_head ON {CHECKPOINTS} (thread, ns, seq)",
    f"CREATE UNIQUE INDEX IF NOT EXISTS {WRITES}_task "
    f"ON {WRITES} (thread, ns, checkpoint_id, task_id)",
    f"CREATE INDEX IF NOT EXISTS {WAITS}_due ON {WAITS} (wake_at)",
    f"CREATE INDEX IF NOT EXISTS {SIGNALS}_box ON {SIGNALS} (thread, name, seq)",
)


class CorruptCheckpointError(GraphflowError, ValueError):
    """A stored row cannot be turned back into a record (bad JSON, an unknown serde tag, a
    wrong shape, a missing column or a broken parent chain). The message names the thread and
    the checkpoint; nothing is skipped silently."""


class UndecodableText(bytes):
    """The bytes of a stored text value that are not valid UTF-8, as a store's driver hands them
    over instead of failing the whole query (SQLite's ``text_factory``; psycopg's text loader on
    an ``SQL_ASCII`` database): reading the row then raises :class:`CorruptCheckpointError`
    naming the thread, the checkpoint and the column."""

    __slots__ = ()

    @classmethod
    def decode_text(cls, data: bytes | memoryview) -> str | UndecodableText:
        """``data`` decoded as UTF-8, or kept as :class:`UndecodableText` if it is not valid."""
        try:
            return str(data, "utf-8")
        except UnicodeDecodeError:
            return cls(data)


def _decoding(method: _M) -> _M:
    """Run a read method on the store's fast text decoding; when a stored text is not valid
    UTF-8 and the driver refuses the whole query (``_undecodable``), run it again with text
    decoded value by value (``_careful``), so the error names the row and the column."""

    @functools.wraps(method)
    def read(self: SqlCheckpointer, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            if not self._undecodable(exc):
                raise
            with self._careful():
                return method(self, *args, **kwargs)

    return read  # type: ignore[return-value]


class Connection(Protocol):
    """What the shared code needs of a DB-API connection (sqlite3 and psycopg both fit)."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...


# -- the storage policy ---------------------------------------------------------------------------

class Lineage(NamedTuple):
    """Bookkeeping stored on every checkpoint row about its lineage's nearest snapshot: the step
    it was taken at, its size, and the write bytes stored after it up to this row."""

    snapshot_step: int
    snapshot_bytes: int
    delta_bytes: int


def _lineage(thread: str, row: Sequence[Any]) -> Lineage:
    """The bookkeeping columns of a stored row (``id, snapshot_step, snapshot_bytes,
    delta_bytes``), checked: a tampered row must not make a later put fail obscurely."""
    for column, value in zip(("snapshot_step", "snapshot_bytes", "delta_bytes"), row[1:],
                             strict=True):
        if type(value) is not int:
            raise CorruptCheckpointError(
                f"thread {thread!r} checkpoint {row[0]!r}: column {column!r} holds {value!r}, "
                f"not an integer")
    return Lineage(*row[1:])


def needs_snapshot(parent: Lineage | None, *, forked: bool, step: int, write_bytes: int,
                   snapshot_every: int | None) -> bool:
    """Whether a new checkpoint stores its full values (the policy of ``docs/durability.md``).

    ``parent`` is the stored parent's bookkeeping (None: no parent in the thread, so no snapshot
    in the lineage yet); ``forked``: the parent is not the thread's head.
    """
    if parent is None or forked:
        return True
    if snapshot_every is not None and step - parent.snapshot_step >= snapshot_every:
        return True
    return parent.delta_bytes + write_bytes >= parent.snapshot_bytes


# -- encoding -------------------------------------------------------------------------------------

def _in(thread: str, ns: str) -> str:
    return f"thread {thread!r} namespace {ns!r}" if ns else f"thread {thread!r}"


def _where(thread: str, checkpoint_id: str | None, ns: str = "") -> str:
    return f"{_in(thread, ns)} checkpoint {checkpoint_id!r}"


def _dumps_parts(where: str, data: Any, parts: Iterable[tuple[str, str, Any]]) -> str:
    """``dumps(data)``. If that fails, the error names the first of ``parts`` that cannot be
    stored: each is ``(what, label, value)``, e.g. ``("node 'put' wrote key 'blob'", "blob",
    value)``, and the error's path starts at ``label`` (``blob[3].content``). ``parts`` is only
    walked on failure."""
    try:
        return dumps(data)
    except SerializationError as exc:
        for what, label, value in parts:
            try:
                dumps({label: value})
            except SerializationError as inner:
                raise SerializationError(f"{where}: {what}: {inner}", path=inner.path) from None
        raise SerializationError(f"{where}: {exc}", path=exc.path) from None


def _dumps(where: str, what: str, value: Any) -> str:
    return _dumps_parts(where, value, ((what, what, value),))


def _dumps_values(where: str, values: dict[str, Any]) -> str:
    return _dumps_parts(where, values, ((f"state key {k!r}", k, v) for k, v in values.items()))


def _dumps_writes(where: str, writes: Sequence[tuple[str, str, Any]]) -> str:
    return _dumps_parts(where, [[node, key, value] for node, key, value in writes],
                        (part for node, key, value in writes
                         for part in _write_parts(node, ((key, value),))))


def _write_parts(node: str, pairs: Iterable[tuple[str, Any]]) -> Iterator[tuple[str, str, Any]]:
    """What a node's writes are called in an error: the key it wrote, or its interrupt."""
    from ..constants import START  # on the error path only
    from ..engine.run import INTERRUPT_KEY

    writer = "the run's input" if node == START else f"node {node!r}"
    for key, value in pairs:
        if key == INTERRUPT_KEY and isinstance(value, list | tuple):
            for intr in value:
                yield (f"{writer} called interrupt() with a value that cannot be stored",
                       "value", getattr(intr, "value", intr))
        yield f"{writer} wrote key {key!r}", key, value


def _next_parts(due: Sequence[tuple[str, int, Any]]) -> Iterator[tuple[str, str, Any]]:
    """What the tasks due next are called in an error: a Send's argument, or (an input
    checkpoint's START task) the run's input."""
    from ..constants import START  # on the error path only

    for n, i, arg in due:
        if n == START and isinstance(arg, dict):
            yield from _write_parts(START, arg.items())
        else:
            yield (f"the Send to node {n!r} (task #{i} of the next step) carries an argument "
                   f"that cannot be stored", "arg", arg)


def _journal_part(task_id: str, index: int, value: Any) -> tuple[str, str, Any]:
    """What a journal entry is called in an error: the step (or model call) whose result it
    is, or the ``Command(resume=...)`` answer."""
    if task_id.endswith("#resume"):
        return f"the Command(resume=...) value for interrupt #{index}", "resume", value
    if isinstance(value, dict) and isinstance(value.get("name"), str) and "value" in value:
        return (f"the result of journaled step {value['name']!r} (journal entry {index})",
                "result", value["value"])
    return f"journal entry {index}", "value", value


def _text(where: str, column: str, raw: Any) -> str:
    """A text column's value as a str: the drivers hand over text they could not decode as
    UTF-8 as :class:`UndecodableText`, so that the error names the column."""
    if type(raw) is str:
        return raw
    if isinstance(raw, UndecodableText):
        try:
            return raw.decode("utf-8")  # fails: the drivers only wrap what does not decode
        except UnicodeDecodeError as exc:
            problem = f"text that is not valid UTF-8 ({exc})"
    else:
        problem = f"a value of type {type(raw).__name__}, not text"
    raise CorruptCheckpointError(
        f"{where}: column {column!r} holds {problem}; the row is corrupted or was not written "
        f"by graphflow")


def _decode(where: str, column: str, raw: Any, shape: Callable[[Any], Any]) -> Any:
    """``shape(loads(raw))``, any failure turned into a :class:`CorruptCheckpointError`."""
    text = _text(where, column, raw)
    try:
        return shape(loads(text))
    except Exception as exc:
        raise CorruptCheckpointError(
            f"{where}: column {column!r} holds data that is not a valid checkpoint record "
            f"({type(exc).__name__}: {exc}); the row is corrupted or was not written by "
            f"graphflow") from exc


def _expect(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def _shape_dict(value: Any) -> dict[str, Any]:
    _expect(isinstance(value, dict), f"expected an object, found {type(value).__name__}")
    return value


def _shape_writes(value: Any) -> list[tuple[str, str, Any]]:
    _expect(isinstance(value, list), f"expected a list, found {type(value).__name__}")
    out = []
    for item in value:
        _expect(isinstance(item, list | tuple) and len(item) == 3 and isinstance(item[0], str)
                and isinstance(item[1], str),
                f"expected [node, key, value] items, found {_short(item)}")
        out.append(tuple(item))
    return out


def _shape_next(value: Any) -> list[tuple[str, int, Any]]:
    _expect(isinstance(value, list), f"expected a list, found {type(value).__name__}")
    out = []
    for item in value:
        _expect(isinstance(item, list | tuple) and len(item) == 3 and isinstance(item[0], str)
                and type(item[1]) is int,
                f"expected [node, send index, argument] items, found {_short(item)}")
        out.append(tuple(item))
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _shape_pairs(value: Any) -> list[tuple[str, Any]]:
    _expect(isinstance(value, list), f"expected a list, found {type(value).__name__}")
    out = []
    for item in value:
        _expect(isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str),
                f"expected [key, value] items, found {_short(item)}")
        out.append(tuple(item))
    return out


def _shape_joins(value: Any) -> dict[int, list[str]]:
    _expect(isinstance(value, dict), f"expected an object, found {type(value).__name__}")
    out = {}
    for index, sources in value.items():
        _expect(isinstance(sources, list) and all(isinstance(x, str) for x in sources),
                f"join {_short(index)}: expected a list of node names")
        out[int(index)] = sources
    return out


def _shape_snapshot(value: Any) -> dict[str, Any] | None:
    return None if value is None else _shape_dict(value)


def _shape_goto(value: Any) -> list[Any] | None:
    _expect(value is None or (isinstance(value, list) and all(
        isinstance(x, str | Send) for x in value)), "expected a list of nodes and Sends, or null")
    return value


def _any(value: Any) -> Any:
    return value


# -- SQL ------------------------------------------------------------------------------------------

_CP_COLUMNS = ("seq, thread, ns, id, parent_id, step, created_at, metadata, next, joins, "
               "writes, snapshot")
_LINEAGE_COLUMNS = "id, snapshot_step, snapshot_bytes, delta_bytes"
_INSERT_COLUMNS = ("thread, ns, id, parent_id, step, created_at, metadata, next, joins, writes, "
                   "snapshot, snapshot_step, snapshot_bytes, delta_bytes")

SQL_HEAD_LINEAGE = (f"SELECT {_LINEAGE_COLUMNS} FROM {CHECKPOINTS} WHERE thread = ? AND ns = ? "
                    f"ORDER BY seq DESC LIMIT 1")
SQL_LINEAGE = (f"SELECT {_LINEAGE_COLUMNS} FROM {CHECKPOINTS} "
               f"WHERE thread = ? AND ns = ? AND id = ?")
SQL_INSERT = (f"INSERT INTO {CHECKPOINTS} ({_INSERT_COLUMNS}) "
              f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
#: A put under a lease: stored only while the lease row still names the writer (the fence).
SQL_INSERT_FENCED = (
    f"INSERT INTO {CHECKPOINTS} ({_INSERT_COLUMNS}) "
    f"SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? "
    f"WHERE EXISTS (SELECT 1 FROM {LEASES} WHERE thread = ? AND token = ?)")
SQL_GET_HEAD = (f"SELECT {_CP_COLUMNS} FROM {CHECKPOINTS} WHERE thread = ? AND ns = ? "
                f"ORDER BY seq DESC LIMIT 1")
SQL_GET_ID = f"SELECT {_CP_COLUMNS} FROM {CHECKPOINTS} WHERE thread = ? AND ns = ? AND id = ?"
SQL_LIST = (f"SELECT {_CP_COLUMNS} FROM {CHECKPOINTS} WHERE thread = ? AND ns = ? "
            f"ORDER BY seq DESC")
SQL_LIST_LIMIT = SQL_LIST + " LIMIT ?"
SQL_THREADS = f"SELECT DISTINCT thread FROM {CHECKPOINTS} WHERE ns = ''"
SQL_NAMESPACES = f"SELECT DISTINCT ns FROM {CHECKPOINTS} WHERE thread = ? AND ns <> ''"

# The chain walk: one recursive query from the checkpoint up its parent_id links, stopping at the
# first row that has a snapshot. ``c.seq < w.seq`` holds for every stored lineage (a delta row's
# parent was stored before it) and makes the walk terminate even on corrupted links. ``{link}``
# is how a row finds its parent: a dialect may word it so its planner takes the right index.
_WALK = (
    f"WITH RECURSIVE walk (seq, thread, ns, id, parent_id, step, created_at, metadata, next, "
    f"joins, writes, snapshot, depth) AS ("
    f" SELECT {_CP_COLUMNS}, 0 FROM {CHECKPOINTS} WHERE {{anchor}}"
    f" UNION ALL"
    f" SELECT c.seq, c.thread, c.ns, c.id, c.parent_id, c.step, c.created_at, c.metadata,"
    f" c.next, c.joins, c.writes, c.snapshot, w.depth + 1"
    f" FROM walk w JOIN {CHECKPOINTS} c ON {{link}}"
    f") SELECT {_CP_COLUMNS} FROM walk ORDER BY depth DESC")
#: The parent link through the unique (thread, ns, id) index, which SQLite's planner takes.
PARENT_LINK = ("c.thread = w.thread AND c.ns = w.ns AND c.id = w.parent_id"
               " WHERE w.snapshot IS NULL AND c.seq < w.seq")


class WalkSql(NamedTuple):
    """The chain walk from a given checkpoint (``by_id``) or from the thread's head."""

    by_id: str
    head: str


def walk_sql(link: str = PARENT_LINK) -> WalkSql:
    """The chain-walk statements with ``link`` as the parent join (see ``_WALK``)."""
    return WalkSql(
        by_id=_WALK.format(anchor="thread = ? AND ns = ? AND id = ?", link=link),
        head=_WALK.format(
            anchor=f"thread = ? AND ns = ? AND seq = "
                   f"(SELECT max(seq) FROM {CHECKPOINTS} WHERE thread = ? AND ns = ?)",
            link=link))


SQL_PUT_WRITES = (
    f"INSERT INTO {WRITES} (thread, ns, checkpoint_id, task_id, node, writes, update_value, "
    f"goto) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    f"ON CONFLICT (thread, ns, checkpoint_id, task_id) DO UPDATE SET "
    f"node = excluded.node, writes = excluded.writes, update_value = excluded.update_value, "
    f"goto = excluded.goto")
SQL_GET_WRITES = (f"SELECT task_id, node, writes, update_value, goto FROM {WRITES} "
                  f"WHERE thread = ? AND ns = ? AND checkpoint_id = ? ORDER BY seq")
SQL_PUT_JOURNAL = (f"INSERT INTO {JOURNAL} (thread, ns, task_id, idx, value) "
                   f"VALUES (?, ?, ?, ?, ?) "
                   f"ON CONFLICT (thread, ns, task_id, idx) DO UPDATE SET value = excluded.value")
SQL_GET_JOURNAL = (f"SELECT idx, value FROM {JOURNAL} WHERE thread = ? AND ns = ? "
                   f"AND task_id = ? ORDER BY idx")
SQL_DELETE_THREAD = tuple(
    f"DELETE FROM {t} WHERE thread = ?"
    for t in (CHECKPOINTS, WRITES, JOURNAL, LEASES, WAITS, SIGNALS))

# Leases. ``{now}`` is the database's clock in seconds since the epoch (one clock for every
# process and machine that shares the database). The same statements serve the threads' leases
# and the entities' (another table, another key column).

class LeaseSql(NamedTuple):
    """The statements of one lease table."""

    acquire: str
    takeover: str
    holder: str
    renew: str
    release: str


def lease_sql(table: str, key: str) -> LeaseSql:
    """The lease statements for ``table``, whose primary key column is ``key``."""
    columns = "token, host, pid, started, expires_at, acquired_at"
    update = ", ".join(f"{c} = excluded.{c}" for c in columns.split(", "))
    return LeaseSql(
        acquire=(f"INSERT INTO {table} ({key}, {columns}) "
                 f"VALUES (?, ?, ?, ?, ?, {{now}} + ?, {{now}}) "
                 f"ON CONFLICT ({key}) DO UPDATE SET {update} "
                 f"WHERE {table}.expires_at < {{now}} OR {table}.token = excluded.token"),
        takeover=(f"UPDATE {table} SET token = ?, host = ?, pid = ?, started = ?, "
                  f"expires_at = {{now}} + ?, acquired_at = {{now}} WHERE {key} = ? AND token = ?"),
        holder=(f"SELECT token, host, pid, started, expires_at - {{now}}, "
                f"{{now}} - acquired_at FROM {table} WHERE {key} = ?"),
        renew=f"UPDATE {table} SET expires_at = {{now}} + ? WHERE {key} = ? AND token = ?",
        release=f"DELETE FROM {table} WHERE {key} = ? AND token = ?",
    )


THREAD_LEASE_SQL = lease_sql(LEASES, "thread")
ENTITY_LEASE_SQL = lease_sql(ENTITY_LEASES, "entity")

#: Sum of the lengths of every JSON column stored for a thread (what the storage tests measure).
SQL_STORED_BYTES = (
    f"SELECT (SELECT coalesce(sum(length(metadata) + length(next) + length(joins) + length(writes)"
    f" + coalesce(length(snapshot), 0)), 0) FROM {CHECKPOINTS} WHERE thread = ?)"
    f" + (SELECT coalesce(sum(length(writes) + length(update_value) + length(goto)), 0)"
    f" FROM {WRITES} WHERE thread = ?)"
    f" + (SELECT coalesce(sum(length(value)), 0) FROM {JOURNAL} WHERE thread = ?)")


# -- the store ------------------------------------------------------------------------------------

class SqlCheckpointer(Checkpointer):
    """A :class:`Checkpointer` on SQL tables with delta storage (see the module docstring).

    Subclasses provide :meth:`_write` (a transaction holding the write lock), :meth:`_read`
    (a connection for reads), ``_ddl``, ``_now`` (the database clock as an SQL expression) and
    :meth:`_table_columns`; optionally ``_placeholder``, :meth:`_lock_thread`,
    :meth:`_encode_time`, ``_migrate_ddl`` and ``_walk``.

    Args:
        snapshot_every: also store a full snapshot whenever this many steps have passed since the
            lineage's last one (None: only the adaptive size rule and forks decide).
    """

    _placeholder = "?"
    _ddl: tuple[str, ...] = ()
    _now = ""
    #: Statements that bring tables of the layout before namespaces (no ``ns`` column) up to date.
    _migrate_ddl: tuple[str, ...] = ()
    #: The chain-walk statements (a dialect may word the parent link its own way).
    _walk: WalkSql = walk_sql()
    _integrity_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, *, snapshot_every: int | None = None) -> None:
        if snapshot_every is not None and (
                isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int)
                or snapshot_every < 1):
            raise ValueError(f"snapshot_every must be a positive int or None, "
                             f"not {snapshot_every!r}")
        self.snapshot_every = snapshot_every
        self._sql_cache: dict[str, str] = {}

    # -- LangGraph's spellings --------------------------------------------------------------------

    @classmethod
    def from_conn_string(cls, conn_string: str, **kwargs: Any) -> Any:
        """LangGraph's ``with SqliteSaver.from_conn_string(path) as saver:`` (or a PostgreSQL
        DSN): the same as ``cls(conn_string)``, closed when the ``with`` block ends."""
        return cls(conn_string, **kwargs)

    def setup(self) -> None:
        """Create the tables now (graphflow creates them on first use anyway; LangGraph's
        savers need this call)."""
        with self._read():
            pass

    # -- what a store provides --------------------------------------------------------------------

    @abstractmethod
    def _write(self) -> AbstractContextManager[Connection]:
        """A connection in a write transaction, committed when the block exits normally (and
        rolled back otherwise) before the method returns."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Connection]:
        """A connection for reads (each statement sees committed data)."""

    def _write_one(self) -> AbstractContextManager[Connection]:
        """A connection for ONE write statement, committed on its own before the block exits
        (autocommit): saves a transaction's BEGIN/COMMIT round trips."""
        return self._write()

    @abstractmethod
    def _table_columns(self, conn: Connection, table: str) -> set[str]:
        """The columns of ``table`` as it exists in the database (empty if it does not)."""

    def _undecodable(self, exc: Exception) -> bool:
        """Whether the driver raised ``exc`` because a query met text that is not valid UTF-8
        (the read is then run again under :meth:`_careful`)."""
        return False

    def _careful(self) -> AbstractContextManager[None]:
        """Reads in this block hand text that is not valid UTF-8 over as
        :class:`UndecodableText` instead of failing the query (a store whose driver raises
        ``_undecodable`` otherwise)."""
        return contextlib.nullcontext()

    def _lock_thread(self, conn: Connection, thread: str) -> None:
        """Serialize writers of ``thread`` until the transaction ends (if ``_write`` does not
        already serialize all writers)."""

    def _encode_time(self, value: datetime) -> Any:
        return value.isoformat()

    def _q(self, sql: str) -> str:
        out = self._sql_cache.get(sql)
        if out is None:
            out = sql.replace("{now}", self._now)
            if self._placeholder != "?":
                out = out.replace("?", self._placeholder)
            self._sql_cache[sql] = out
        return out

    def _create_schema(self, conn: Connection) -> None:
        """Create the tables and indexes if missing (migrating tables of the layout before
        namespaces), then check that tables found in the database have the columns graphflow
        needs (a foreign table of the same name fails here, clearly, rather than on some later
        query)."""
        if self._before_namespaces(conn):
            for statement in self._migrate_ddl:
                conn.execute(statement)
        self._check_columns(conn, before=True)
        for statement in (*self._ddl, *INDEXES):
            conn.execute(statement)
        self._check_columns(conn, before=False)

    def _before_namespaces(self, conn: Connection) -> bool:
        """Whether the tables are graphflow's own, of the layout before namespaces."""
        for table in (CHECKPOINTS, WRITES, JOURNAL):
            found = self._table_columns(conn, table)
            if "ns" in found or not TABLE_COLUMNS[table] - {"ns"} <= found:
                return False
        return True

    def _check_columns(self, conn: Connection, *, before: bool) -> None:
        for table, needed in TABLE_COLUMNS.items():
            found = self._table_columns(conn, table)
            missing = needed - found
            if missing and (found or not before):
                raise CorruptCheckpointError(
                    f"table {table!r} lacks column(s) {sorted(missing)}: it was not created by "
                    f"this version of graphflow; migrate or drop it, or use another database")

    # -- conversion -------------------------------------------------------------------------------

    @staticmethod
    def _decode_time(where: str, raw: Any) -> datetime:
        if isinstance(raw, datetime):
            return raw
        try:
            return datetime.fromisoformat(raw)
        except (TypeError, ValueError) as exc:
            raise CorruptCheckpointError(
                f"{where}: column 'created_at' holds {raw!r}, not a timestamp") from exc

    def _to_checkpoint(self, row: Sequence[Any], *, replay_only: bool = False) -> Checkpoint:
        """The record of a row. ``replay_only``: a record in the middle of a chain, whose
        ``values`` and ``writes`` alone are read (to replay them): its ``next``, ``joins`` and
        ``metadata`` are left empty instead of being decoded."""
        try:
            (_seq, thread, ns, cid, parent_id, step, created_at, metadata, nxt, joins, writes,
             snapshot) = row
        except ValueError as exc:
            raise CorruptCheckpointError(f"a row of {CHECKPOINTS!r} has {len(row)} columns, "
                                         f"expected 12") from exc
        thread = _text(f"a row of {CHECKPOINTS!r}", "thread", thread)
        ns = _text(f"a row of {CHECKPOINTS!r} of thread {thread!r}", "ns", ns)
        where = _where(thread, cid, ns)
        if type(cid) is not str:
            cid = _text(where, "id", cid)
        if parent_id is not None and type(parent_id) is not str:
            parent_id = _text(where, "parent_id", parent_id)
        if not isinstance(step, int) or isinstance(step, bool):
            raise CorruptCheckpointError(f"{where}: column 'step' holds {step!r}, not an integer")
        values = _decode(where, "snapshot", snapshot, _shape_snapshot) \
            if snapshot is not None else None
        created = self._decode_time(where, created_at)
        writes = _decode(where, "writes", writes, _shape_writes)
        if replay_only:
            return Checkpoint(id=cid, thread=thread, step=step, values=values,  # type: ignore
                              next=[], parent_id=parent_id, created_at=created, writes=writes,
                              ns=ns)
        return Checkpoint(
            id=cid, thread=thread, step=step, values=values,  # type: ignore[arg-type]
            next=_decode(where, "next", nxt, _shape_next),
            joins=_decode(where, "joins", joins, _shape_joins),
            parent_id=parent_id, created_at=created,
            metadata=_decode(where, "metadata", metadata, _shape_dict),
            writes=writes, ns=ns,
        )

    @staticmethod
    def _to_pending_write(thread: str, ns: str, checkpoint_id: str,
                          row: Sequence[Any]) -> PendingWrite:
        task_id, node, writes, update, goto = row
        where = f"{_where(thread, checkpoint_id, ns)} pending write of task {task_id!r}"
        return PendingWrite(
            task_id=_text(where, "task_id", task_id), node=_text(where, "node", node),
            writes=_decode(where, "writes", writes, _shape_pairs),
            update=_decode(where, "update_value", update, _any),
            goto=_decode(where, "goto", goto, _shape_goto),
        )

    # -- checkpoints ------------------------------------------------------------------------------

    def put(self, checkpoint: Checkpoint, *, lease: Lease | None = None) -> None:
        """Store ``checkpoint`` as the newest of its thread and namespace, committed before
        returning. Its values are stored only when the storage policy asks for a snapshot.

        With ``lease``: one fenced statement, stored only while ``lease`` holds the thread
        (:class:`ThreadBusyError` otherwise); the parent's bookkeeping comes from the lease's
        cache when the parent is the head this writer stored last."""
        cp = checkpoint
        where = _where(cp.thread, cp.id, cp.ns)
        writes = _dumps_writes(where, cp.writes)
        row = [cp.thread, cp.ns, cp.id, cp.parent_id, cp.step, self._encode_time(cp.created_at),
               _dumps(where, "metadata", cp.metadata),
               _dumps_parts(where, [[n, i, arg] for n, i, arg in cp.next], _next_parts(cp.next)),
               _dumps(where, "joins", {str(i): list(s) for i, s in cp.joins.items()})
               if cp.joins else "{}", writes]
        q = self._q
        if lease is None:
            with self._write() as conn:
                self._lock_thread(conn, cp.thread)
                parent, forked = self._parent_lineage(conn, cp)
                lineage = self._lineage_columns(cp, where, row, parent, forked)
                self._insert(conn, q(SQL_INSERT), where, (*row, *lineage))
            return
        cached = lease.heads.get(cp.ns)
        if cached is not None and cached[0] == cp.parent_id:
            parent, forked = cached[1], False
        elif cp.parent_id is None:
            parent, forked = None, False
        else:
            with self._read() as conn:
                parent, forked = self._parent_lineage(conn, cp)
        lineage = self._lineage_columns(cp, where, row, parent, forked)
        with self._write_one() as conn:
            stored = self._insert(conn, q(SQL_INSERT_FENCED), where,
                                  (*row, *lineage, lease.thread, lease.owner.token))
        if not stored:
            lease.lost = True
            raise ThreadBusyError(lease.thread, None, lost=True)
        lease.heads[cp.ns] = (cp.id, lineage)

    def _parent_lineage(self, conn: Connection, cp: Checkpoint) -> tuple[Lineage | None, bool]:
        """The stored parent's bookkeeping (None: no parent in the namespace), and whether the
        parent is not the head (a fork)."""
        if cp.parent_id is None:
            return None, False
        q = self._q
        head = conn.execute(q(SQL_HEAD_LINEAGE), (cp.thread, cp.ns)).fetchone()
        if head is None:
            return None, False
        if head[0] == cp.parent_id:
            return _lineage(cp.thread, head), False
        row = conn.execute(q(SQL_LINEAGE), (cp.thread, cp.ns, cp.parent_id)).fetchone()
        return (None, False) if row is None else (_lineage(cp.thread, row), True)

    def _lineage_columns(self, cp: Checkpoint, where: str, row: list[Any],
                         parent: Lineage | None, forked: bool) -> Lineage:
        """Decide the snapshot (appending the ``snapshot`` column to ``row``) and return this
        row's storage bookkeeping."""
        writes_len = len(row[-1])
        snapshot = needs_snapshot(parent, forked=forked, step=cp.step, write_bytes=writes_len,
                                  snapshot_every=self.snapshot_every)
        if snapshot and cp.values is None:
            if parent is None:
                raise ValueError(f"{where} has no values and no stored parent to rebuild "
                                 f"them from")
            snapshot = False  # a record read back without values: replaying still works
        if snapshot:
            values = _dumps_values(where, cp.values)
            row.append(values)
            return Lineage(cp.step, len(values), 0)
        assert parent is not None
        row.append(None)
        return Lineage(parent.snapshot_step, parent.snapshot_bytes,
                       parent.delta_bytes + writes_len)

    def _insert(self, conn: Connection, sql: str, where: str, params: Sequence[Any]) -> bool:
        try:
            cur = conn.execute(sql, params)
        except self._integrity_errors as exc:
            raise ValueError(f"{where} is already stored; checkpoints are immutable") from exc
        return bool(cur.rowcount)

    @_decoding
    def get(self, thread: str, checkpoint_id: str | None = None, *,
            ns: str = "") -> Checkpoint | None:
        """The newest checkpoint of ``thread`` (by insertion), or the one with ``checkpoint_id``;
        as stored, so ``values`` is None for a delta row (use :meth:`chain` to rebuild)."""
        with self._read() as conn:
            if checkpoint_id is None:
                row = conn.execute(self._q(SQL_GET_HEAD), (thread, ns)).fetchone()
            else:
                row = conn.execute(self._q(SQL_GET_ID), (thread, ns, checkpoint_id)).fetchone()
        return None if row is None else self._to_checkpoint(row)

    @_decoding
    def chain(self, thread: str, checkpoint_id: str | None = None, *,
              ns: str = "") -> list[Checkpoint]:
        """From the nearest ancestor with values to the checkpoint (newest if None), oldest
        first, in one recursive query. Raises :class:`CorruptCheckpointError` if the lineage
        breaks before a snapshot. The records before the last are what replay reads (values,
        writes): their ``next``, ``joins`` and ``metadata`` are left empty."""
        with self._read() as conn:
            if checkpoint_id is None:
                rows = conn.execute(self._q(self._walk.head), (thread, ns, thread, ns)).fetchall()
            else:
                rows = conn.execute(self._q(self._walk.by_id),
                                    (thread, ns, checkpoint_id)).fetchall()
        last = len(rows) - 1
        out = [self._to_checkpoint(row, replay_only=i < last) for i, row in enumerate(rows)]
        if out and out[0].values is None:
            first, target = out[0], out[-1]
            raise CorruptCheckpointError(
                f"{_where(thread, target.id, ns)}: its lineage breaks at checkpoint "
                f"{first.id!r}, whose parent {first.parent_id!r} is not stored (or not older), "
                f"before any snapshot of the values; the thread's rows are incomplete or "
                f"corrupted")
        return out

    @_decoding
    def list(self, thread: str, *, limit: int | None = None, ns: str = "") -> list[Checkpoint]:
        """The checkpoints of ``thread``, newest (last put) first, as stored."""
        with self._read() as conn:
            if limit is None:
                rows = conn.execute(self._q(SQL_LIST), (thread, ns)).fetchall()
            else:
                rows = conn.execute(self._q(SQL_LIST_LIMIT),
                                    (thread, ns, max(limit, 0))).fetchall()
        return [self._to_checkpoint(row) for row in rows]

    def delete_thread(self, thread: str) -> None:
        """Delete the thread's checkpoints, pending writes, journal (every namespace) and lease,
        in one transaction."""
        with self._write() as conn:
            self._lock_thread(conn, thread)
            for sql in SQL_DELETE_THREAD:
                conn.execute(self._q(sql), (thread,))

    @_decoding
    def threads(self) -> list[str]:
        """The threads that have checkpoints, sorted (by code point, whatever the collation)."""
        with self._read() as conn:
            rows = conn.execute(self._q(SQL_THREADS)).fetchall()
        return sorted(_text(f"a row of {CHECKPOINTS!r}", "thread", row[0]) for row in rows)

    @_decoding
    def namespaces(self, thread: str) -> list[str]:
        """The subgraph namespaces of ``thread`` that have checkpoints, sorted."""
        with self._read() as conn:
            rows = conn.execute(self._q(SQL_NAMESPACES), (thread,)).fetchall()
        return sorted(_text(f"a row of {CHECKPOINTS!r} of thread {thread!r}", "ns", row[0])
                      for row in rows)

    # -- pending writes and journal ---------------------------------------------------------------

    def put_writes(self, thread: str, checkpoint_id: str, write: PendingWrite, *,
                   ns: str = "") -> None:
        """Store (or replace, by task id) a finished task's outcome; committed on return."""
        where = f"{_where(thread, checkpoint_id, ns)} task {write.task_id!r}"
        node = write.node
        row = (thread, ns, checkpoint_id, write.task_id, node,
               _dumps_parts(where, [[k, v] for k, v in write.writes],
                            _write_parts(node, write.writes)),
               _dumps(where, f"node {node!r} returned an update that cannot be stored",
                      write.update),
               _dumps(where, f"node {node!r} chose a goto that cannot be stored", write.goto))
        with self._write_one() as conn:
            conn.execute(self._q(SQL_PUT_WRITES), row)

    @_decoding
    def get_writes(self, thread: str, checkpoint_id: str, *,
                   ns: str = "") -> dict[str, PendingWrite]:
        """The outcomes stored against ``checkpoint_id``, by task id, in first-stored order."""
        with self._read() as conn:
            rows = conn.execute(self._q(SQL_GET_WRITES), (thread, ns, checkpoint_id)).fetchall()
        out = {}
        for row in rows:
            pw = self._to_pending_write(thread, ns, checkpoint_id, row)
            out[pw.task_id] = pw
        return out

    def put_journal(self, thread: str, task_id: str, index: int, value: Any, *,
                    ns: str = "") -> None:
        """Record (or replace) the ``index``-th journaled result of a task."""
        text = _dumps_parts(f"{_in(thread, ns)} task {task_id!r}", value,
                            (_journal_part(task_id, index, value),))
        with self._write_one() as conn:
            conn.execute(self._q(SQL_PUT_JOURNAL), (thread, ns, task_id, index, text))

    @_decoding
    def get_journal(self, thread: str, task_id: str, *, ns: str = "") -> list[Any]:
        """A task's journaled results, by index."""
        with self._read() as conn:
            rows = conn.execute(self._q(SQL_GET_JOURNAL), (thread, ns, task_id)).fetchall()
        where = f"{_in(thread, ns)} task {task_id!r}"
        return [_decode(f"{where} journal entry {idx}", "value", value, _any)
                for idx, value in rows]

    def stored_bytes(self, thread: str) -> int:
        """Characters of JSON stored for ``thread`` (all JSON columns of the three tables)."""
        with self._read() as conn:
            row = conn.execute(self._q(SQL_STORED_BYTES), (thread, thread, thread)).fetchone()
        return int(row[0])

    # -- leases -----------------------------------------------------------------------------------

    @_decoding
    def acquire_lease(self, thread: str, owner: Owner, ttl: float, *,
                      takeover: Owner | None = None) -> Holder | None:
        """Take ``thread``'s lease in one atomic statement (see :class:`Checkpointer`)."""
        return self._lease_acquire(THREAD_LEASE_SQL, thread, owner, ttl, takeover)

    def renew_lease(self, thread: str, owner: Owner, ttl: float) -> bool:
        """Extend ``owner``'s lease on ``thread``; False if another writer has it now."""
        return self._lease_renew(THREAD_LEASE_SQL, thread, owner, ttl)

    def release_lease(self, thread: str, owner: Owner) -> None:
        """End ``owner``'s lease on ``thread`` (nothing if it does not hold it)."""
        self._lease_release(THREAD_LEASE_SQL, thread, owner)

    def _lease_acquire(self, sql: LeaseSql, key: str, owner: Owner, ttl: float,
                       takeover: Owner | None) -> Holder | None:
        q = self._q
        who = (owner.token, owner.host, owner.pid, owner.started, ttl)
        for _ in range(3):  # the holder may release between the two statements: look again
            with self._write_one() as conn:
                if takeover is not None:
                    cur = conn.execute(q(sql.takeover), (*who, key, takeover.token))
                else:
                    cur = conn.execute(q(sql.acquire), (key, *who))
                if cur.rowcount:
                    return None
            with self._read() as conn:
                row = conn.execute(q(sql.holder), (key,)).fetchone()
            if row is not None:
                token, host, pid, started, expires_in, held_for = row
                return Holder(Owner(token, host, int(pid), started), float(expires_in),
                              float(held_for))
            takeover = None
        raise ThreadBusyError(key, None)

    def _lease_renew(self, sql: LeaseSql, key: str, owner: Owner, ttl: float) -> bool:
        with self._write_one() as conn:
            cur = conn.execute(self._q(sql.renew), (ttl, key, owner.token))
        return bool(cur.rowcount)

    def _lease_release(self, sql: LeaseSql, key: str, owner: Owner) -> None:
        with self._write_one() as conn:
            conn.execute(self._q(sql.release), (key, owner.token))

    @_decoding
    def holds_lease(self, thread: str, owner: Owner) -> bool:
        """Whether ``owner`` holds ``thread`` right now, as the database says."""
        with self._read() as conn:
            row = conn.execute(self._q(THREAD_LEASE_SQL.holder), (thread,)).fetchone()
        return row is not None and row[0] == owner.token

    # -- async twins: the sync methods in a worker thread -----------------------------------------

    async def aput(self, checkpoint: Checkpoint, *, lease: Lease | None = None) -> None:
        await asyncio.to_thread(self.put, checkpoint, lease=lease)

    async def aget(self, thread: str, checkpoint_id: str | None = None, *,
                   ns: str = "") -> Checkpoint | None:
        return await asyncio.to_thread(self.get, thread, checkpoint_id, ns=ns)

    async def aput_writes(self, thread: str, checkpoint_id: str, write: PendingWrite, *,
                          ns: str = "") -> None:
        await asyncio.to_thread(self.put_writes, thread, checkpoint_id, write, ns=ns)

    async def aget_writes(self, thread: str, checkpoint_id: str, *,
                          ns: str = "") -> dict[str, PendingWrite]:
        return await asyncio.to_thread(self.get_writes, thread, checkpoint_id, ns=ns)

    async def achain(self, thread: str, checkpoint_id: str | None = None, *,
                     ns: str = "") -> list[Checkpoint]:
        return await asyncio.to_thread(self.chain, thread, checkpoint_id, ns=ns)

    async def aput_journal(self, thread: str, task_id: str, index: int, value: Any, *,
                           ns: str = "") -> None:
        await asyncio.to_thread(self.put_journal, thread, task_id, index, value, ns=ns)

    async def aget_journal(self, thread: str, task_id: str, *, ns: str = "") -> list[Any]:
        return await asyncio.to_thread(self.get_journal, thread, task_id, ns=ns)

    async def athreads(self) -> list[str]:
        return await asyncio.to_thread(self.threads)

    async def alist(self, thread: str, *, limit: int | None = None,
                    ns: str = "") -> list[Checkpoint]:
        return await asyncio.to_thread(self.list, thread, limit=limit, ns=ns)

    async def adelete_thread(self, thread: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread)
