"""The storage-level contract of every Checkpointer (docs/durability.md), one suite for all.

``store``-based tests run against MemoryCheckpointer, SqliteCheckpointer (a file in tmp_path)
and PostgresCheckpointer (a fresh schema per test). ``sql``-based tests cover what only the SQL
stores do: delta storage, its policy and growth, corrupted rows, reopening.

PostgreSQL: the ``pg_dsn`` fixture (conftest: ``GRAPHFLOW_PG_DSN``, default a ``graphflow_test``
database it creates; ``.ci/postgres.sh`` sets a server up). Unreachable -> the postgres cases
skip, or fail when CI=true.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from graphflow.checkpoint import Checkpoint, Checkpointer, MemoryCheckpointer, PendingWrite
from graphflow.checkpoint.base import new_checkpoint_id
from graphflow.checkpoint.sqlite import CorruptCheckpointError, SqliteCheckpointer
from graphflow.types import Send

pytestmark = pytest.mark.timeout(120)

ODD_THREADS = ["a|b:c", "parent|node:child|x:y", "ünïcødé 日本語 🚀", "q'uo\"te %s ? ; --", ""]


# -- backends -------------------------------------------------------------------------------------

@dataclass
class Backend:
    """A store factory plus raw SQL access to what it stored (None for memory)."""

    name: str
    make: Callable[..., Checkpointer]
    sql: Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]] | None = None
    placeholder: str = "?"
    stores: list[Checkpointer] = field(default_factory=list)

    def open(self, **kwargs: Any) -> Checkpointer:
        store = self.make(**kwargs)
        self.stores.append(store)
        return store

    def q(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        assert self.sql is not None
        return self.sql(query.replace("?", self.placeholder), params)

    def close(self) -> None:
        for store in self.stores:
            close = getattr(store, "close", None)
            if close is not None:
                close()


def _sqlite_backend(tmp_path: Path) -> Backend:
    path = tmp_path / "checkpoints.db"

    def sql(query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            return conn.execute(query, params).fetchall()
        finally:
            conn.close()

    return Backend("sqlite", lambda **kw: SqliteCheckpointer(path, **kw), sql)


def _postgres_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    import psycopg
    from psycopg.conninfo import make_conninfo

    from graphflow.checkpoint.postgres import PostgresCheckpointer

    dsn = request.getfixturevalue("pg_dsn")
    schema = f"gf_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    scoped = make_conninfo(dsn, options=f"-c search_path={schema}")

    def sql(query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with psycopg.connect(scoped, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    backend = Backend("postgres", lambda **kw: PostgresCheckpointer(scoped, **kw), sql, "%s")
    try:
        yield backend
    finally:
        backend.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        yield Backend("memory", lambda **kw: MemoryCheckpointer())
    elif request.param == "sqlite":
        backend = _sqlite_backend(tmp_path)
        try:
            yield backend
        finally:
            backend.close()
    else:
        yield from _postgres_backend(request)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from _backend(request, tmp_path)


@pytest.fixture(params=["sqlite", "postgres"])
def sql(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Only the SQL stores (delta storage, raw rows)."""
    yield from _backend(request, tmp_path)


@pytest.fixture
def store(backend: Backend) -> Checkpointer:
    return backend.open()


# -- helpers --------------------------------------------------------------------------------------

def reduce(values: dict[str, Any], writes: list[tuple[str, str, Any]]) -> dict[str, Any]:
    """The test graph's reducers: ``log`` appends, everything else is replaced."""
    out = dict(values)
    for _node, key, value in writes:
        out[key] = out.get(key, []) + value if key == "log" else value
    return out


def replay(chain: list[Checkpoint]) -> dict[str, Any]:
    assert chain, "empty chain"
    assert chain[0].values is not None, "chain must start at a snapshot"
    for older, newer in itertools.pairwise(chain):
        assert newer.parent_id == older.id, "chain must follow parent_id"
    values = dict(chain[0].values)
    for cp in chain[1:]:
        values = reduce(values, cp.writes)
    return values


class Lineage:
    """Puts checkpoints the way the engine does: each step's writes reduced into the values."""

    def __init__(self, store: Checkpointer, thread: str) -> None:
        self.store = store
        self.thread = thread
        self.values: dict[str, dict[str, Any]] = {}  # id -> full values put
        self.put_order: list[str] = []

    def put(self, writes: list[tuple[str, str, Any]], parent: str | None = None, *,
            step: int | None = None, first: bool = False, **extra: Any) -> Checkpoint:
        if first:
            parent_values: dict[str, Any] = {"log": []}
            parent_id = None
        else:
            parent_id = parent if parent is not None else self.put_order[-1]
            parent_values = self.values[parent_id]
        values = reduce(parent_values, writes)
        cp = Checkpoint(
            id=new_checkpoint_id(), thread=self.thread,
            step=step if step is not None else len(self.put_order), values=values,
            next=extra.pop("next", [("node", 0, None)]), parent_id=parent_id, writes=writes,
            metadata=extra.pop("metadata", {"source": "loop"}), **extra)
        self.store.put(cp)
        self.values[cp.id] = values
        self.put_order.append(cp.id)
        return cp

    def grow(self, n: int, payload: str = "x" * 20) -> list[Checkpoint]:
        out = []
        for i in range(n):
            first = not self.put_order
            out.append(self.put([("node", "log", [f"{payload}{i}"]), ("node", "n", i)],
                                first=first))
        return out


def stored_bytes(sql: Backend, thread: str) -> int:
    """Sum of the lengths of every JSON text stored for ``thread``."""
    [(total,)] = sql.q(
        "SELECT coalesce(sum(length(metadata) + length(next) + length(joins) + length(writes)"
        " + coalesce(length(snapshot), 0)), 0) FROM graphflow_checkpoints WHERE thread = ?",
        (thread,))
    return int(total)


def has_snapshot(sql: Backend, thread: str, checkpoint_id: str) -> bool:
    [(snap,)] = sql.q("SELECT snapshot IS NOT NULL FROM graphflow_checkpoints "
                      "WHERE thread = ? AND id = ?", (thread, checkpoint_id))
    return bool(snap)


# -- put / get / list -----------------------------------------------------------------------------

def test_empty_store(store: Checkpointer) -> None:
    assert store.get("t") is None
    assert store.get("t", "nope") is None
    assert store.list("t") == []
    assert store.chain("t") == []
    assert store.threads() == []
    assert store.get_writes("t", "nope") == {}
    assert store.get_journal("t", "task") == []


def test_put_get_round_trips_every_field(store: Checkpointer) -> None:
    created = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    cp = Checkpoint(
        id="c0", thread="t", step=3, values={"log": ["a"], "n": 1},
        next=[("a", 0, None), ("b", 2, {"x": [1, 2]})], joins={0: ["a", "b"], 3: ["c"]},
        parent_id=None, created_at=created, metadata={"source": "input", "step": 3},
        writes=[("__start__", "log", ["a"]), ("__start__", "n", 1)])
    store.put(cp)
    got = store.get("t")
    assert got is not None
    assert got == store.get("t", "c0")
    assert (got.id, got.thread, got.step, got.parent_id) == ("c0", "t", 3, None)
    assert got.values == {"log": ["a"], "n": 1}  # a thread's first checkpoint is a snapshot
    assert [tuple(x) for x in got.next] == [("a", 0, None), ("b", 2, {"x": [1, 2]})]
    assert got.joins == {0: ["a", "b"], 3: ["c"]}
    assert got.created_at == created
    assert got.metadata == {"source": "input", "step": 3}
    assert [tuple(w) for w in got.writes] == [("__start__", "log", ["a"]), ("__start__", "n", 1)]


def test_list_is_newest_first_with_limit(store: Checkpointer) -> None:
    lin = Lineage(store, "t")
    cps = lin.grow(5)
    ids = [c.id for c in cps]
    assert [c.id for c in store.list("t")] == ids[::-1]
    assert [c.id for c in store.list("t", limit=2)] == ids[::-1][:2]
    assert store.list("t", limit=0) == []
    assert [c.id for c in store.list("t", limit=99)] == ids[::-1]
    assert store.get("t").id == ids[-1]
    for c in cps:
        got = store.get("t", c.id)
        assert got is not None and got.id == c.id and got.step == c.step
    assert store.get("other", ids[0]) is None  # ids are per thread


def test_head_is_the_last_put_even_for_a_fork_at_a_lower_step(store: Checkpointer) -> None:
    lin = Lineage(store, "t")
    c0, c1, c2, c3 = lin.grow(4)
    fork = lin.put([("update", "n", 99)], parent=c1.id, step=c1.step,
                   metadata={"source": "update"})
    assert store.get("t").id == fork.id
    assert [c.id for c in store.list("t")] == [fork.id, c3.id, c2.id, c1.id, c0.id]
    after = lin.put([("node", "log", ["after-fork"])], parent=fork.id, step=fork.step + 1)
    assert store.get("t").id == after.id
    assert replay(store.chain("t")) == lin.values[after.id]


# -- chain ----------------------------------------------------------------------------------------

def test_chain_rebuilds_every_checkpoint_including_forks(store: Checkpointer) -> None:
    lin = Lineage(store, "t")
    cps = lin.grow(30)
    fork = lin.put([("update", "log", ["forked"])], parent=cps[10].id, step=10)
    lin.grow(5)
    old_branch = lin.put([("node", "log", ["old branch"])], parent=cps[-1].id, step=30)
    assert store.chain("t")[-1].id == old_branch.id
    for cid, values in lin.values.items():
        chain = store.chain("t", cid)
        assert chain[-1].id == cid
        assert chain[0].values is not None
        assert replay(chain) == values, cid
    assert [c.id for c in store.chain("t")] == [c.id for c in store.chain("t", old_branch.id)]
    assert fork.id in lin.values
    assert store.chain("t", "missing") == []
    assert store.chain("other") == []


def test_sql_stores_keep_deltas_and_chain_starts_at_the_nearest_snapshot(sql: Backend) -> None:
    store = sql.open()
    lin = Lineage(store, "t")
    cps = lin.grow(40)
    stored = {c.id: c for c in store.list("t")}
    assert stored[cps[0].id].values == lin.values[cps[0].id]  # no snapshot yet -> snapshot
    deltas = [c for c in cps if stored[c.id].values is None]
    assert len(deltas) > len(cps) // 2, "most rows should be deltas"
    for c in cps:
        chain = store.chain("t", c.id)
        assert chain[0].values is not None
        assert all(x.values is None for x in chain[1:]), "stops at the nearest snapshot"
        assert replay(chain) == lin.values[c.id]


def test_chain_is_one_query_whatever_the_depth(tmp_path: Path) -> None:
    store = SqliteCheckpointer(tmp_path / "db.sqlite")
    lin = Lineage(store, "t")
    lin.put([("n", "log", ["x" * 100_000])], first=True)  # huge snapshot: long delta runs
    lin.grow(300)
    statements: list[str] = []
    conn = store._connection()
    conn.set_trace_callback(statements.append)
    chain = store.chain("t")
    conn.set_trace_callback(None)
    assert len(chain) == 301
    assert len(statements) == 1, statements
    store.close()


def _rows_scanned_per_link(sql: Backend, store: Checkpointer, thread: str) -> float:
    """How many stored rows the chain walk of ``thread``'s head looks at per parent link, read
    from the database's own account of the query (PostgreSQL: EXPLAIN ANALYZE, rows read and
    rows filtered away; SQLite: the query plan, whose recursive step must search the unique
    (thread, ns, id) key)."""
    statement = store._q(store._walk.head)  # type: ignore[attr-defined]
    params = (thread, "", thread, "")
    if sql.name == "postgres":
        [(plan,)] = sql.q("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params)
        plan = plan if isinstance(plan, list) else json.loads(plan)
        links = scanned = 0

        def visit(node: dict[str, Any]) -> None:
            nonlocal links, scanned
            if node.get("Relation Name") == "graphflow_checkpoints" and node.get("Alias") == "c":
                loops = node["Actual Loops"]
                links += loops
                scanned += (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
                            + node.get("Rows Removed by Index Recheck", 0)) * loops
            for child in node.get("Plans", ()):
                visit(child)

        visit(plan[0]["Plan"])
        assert links, plan
        return scanned / links
    details = [row[-1] for row in sql.q("EXPLAIN QUERY PLAN " + statement, params)]
    [step] = [d for d in details if d.startswith("SEARCH c ")]
    return 1.0 if "thread=? AND ns=? AND id=?" in step else float("inf")


def test_a_long_thread_is_read_link_by_link_when_most_threads_are_short(sql: Backend) -> None:
    """The planner sees the average thread: when thousands of threads hold one checkpoint each,
    a parent link must still be found by its id, not by scanning the long thread's rows (a
    10,000-step thread once took 10 s to read on PostgreSQL)."""
    store = sql.open()
    lin = Lineage(store, "long")
    lin.put([("n", "log", ["x" * 100_000])], first=True)  # huge snapshot: one long delta run
    lin.grow(400)
    many = 4000
    series = ("SELECT generate_series(1, ?) AS g" if sql.name == "postgres" else
              "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < ?) "
              "SELECT g FROM s")
    sql.q("INSERT INTO graphflow_checkpoints (thread, ns, id, parent_id, step, created_at, "
          "metadata, next, joins, writes, snapshot, snapshot_step, snapshot_bytes, delta_bytes) "
          "SELECT 'short-' || g, '', 'id-' || g, NULL, 0, ?, '{}', '[]', '[]', '[]', "
          "'{\"log\": []}', 0, 12, 0 FROM (" + series + ") AS gs",
          (datetime.now(UTC).isoformat(), many))
    sql.q("ANALYZE", ())
    chain = store.chain("long")
    assert len(chain) == 401
    assert replay(chain) == lin.values[lin.put_order[-1]]
    assert _rows_scanned_per_link(sql, store, "long") <= 2


# -- storage policy -------------------------------------------------------------------------------

def test_adaptive_snapshot_rule_follows_the_spec(sql: Backend) -> None:
    store = sql.open()
    lin = Lineage(store, "t")
    lin.put([("n", "log", ["s" * 2000])], first=True)
    for i in range(120):
        lin.put([("n", "log", ["w" * (50 + 7 * i)])])
    rows = sql.q("SELECT length(writes), length(snapshot) FROM graphflow_checkpoints "
                 "WHERE thread = ? ORDER BY seq", ("t",))
    assert rows[0][1] is not None
    last_snapshot, since = rows[0][1], 0
    snapshots = 1
    for write_len, snap_len in rows[1:]:
        due = since + write_len >= last_snapshot
        assert (snap_len is not None) == due
        if due:
            last_snapshot, since, snapshots = snap_len, 0, snapshots + 1
        else:
            since += write_len
    assert snapshots >= 3


def test_snapshot_every_steps(sql: Backend) -> None:
    store = sql.open(snapshot_every=4)
    lin = Lineage(store, "t")
    lin.put([("n", "log", ["s" * 50_000])], first=True)  # the size rule never fires here
    cps = [lin.put([("n", "log", [str(i)])]) for i in range(1, 13)]
    snap_steps = [c.step for c in cps if has_snapshot(sql, "t", c.id)]
    assert snap_steps == [4, 8, 12]
    for c in cps:
        assert replay(store.chain("t", c.id)) == lin.values[c.id]
    with pytest.raises(ValueError, match="snapshot_every"):
        sql.make(snapshot_every=0)


def test_a_fork_always_gets_a_snapshot(sql: Backend) -> None:
    store = sql.open()
    lin = Lineage(store, "t")
    lin.put([("n", "log", ["s" * 10_000])], first=True)
    cps = lin.grow(6)
    assert not has_snapshot(sql, "t", cps[-1].id)
    fork = lin.put([("update", "n", -1)], parent=cps[2].id, step=cps[2].step)
    assert has_snapshot(sql, "t", fork.id)
    child = lin.put([("n", "log", ["child"])], parent=fork.id)
    assert not has_snapshot(sql, "t", child.id)  # the fork is the head: a plain delta
    back = lin.put([("n", "log", ["back on the old branch"])], parent=cps[-1].id)
    assert has_snapshot(sql, "t", back.id)  # parent is no longer the head: another fork
    for cid, values in lin.values.items():
        assert replay(store.chain("t", cid)) == values


@pytest.mark.parametrize("steps", [(250, 500, 1000)])
def test_storage_grows_linearly_for_an_append_only_state(
        sql: Backend, steps: tuple[int, ...], capsys: pytest.CaptureFixture[str]) -> None:
    store = sql.open()
    lin = Lineage(store, "t")
    measured = {}
    for i in range(steps[-1]):
        lin.put([("node", "log", [f"{i:06d}" + "m" * 190])], first=(i == 0))
        if i + 1 in steps:
            measured[i + 1] = stored_bytes(sql, "t")
    with capsys.disabled():
        print(f"\n[{sql.name}] stored JSON bytes by steps: {measured}")
    assert measured[1000] / measured[250] <= 4 * 1.25
    assert measured[500] / measured[250] <= 2 * 1.25
    writes = sql.q("SELECT sum(length(writes)) FROM graphflow_checkpoints WHERE thread = ?",
                   ("t",))[0][0]
    assert measured[1000] <= 4 * writes  # every byte of state is stored a bounded number of times
    assert replay(store.chain("t")) == lin.values[lin.put_order[-1]]


# -- pending writes and journal -------------------------------------------------------------------

def test_pending_writes_are_per_checkpoint_and_replaced_by_task_id(store: Checkpointer) -> None:
    lin = Lineage(store, "t")
    c0, c1 = lin.grow(2)
    a = PendingWrite("1:a:0", "a", [("log", ["a"]), ("n", 1)], {"log": ["a"], "n": 1}, None)
    b = PendingWrite("1:b:0", "b", [("log", ["b"])], {"log": ["b"]}, ["c", "d"])
    c = PendingWrite("2:c:0", "c", [], None, None)
    store.put_writes("t", c0.id, a)
    store.put_writes("t", c0.id, b)
    store.put_writes("t", c1.id, c)
    assert store.get_writes("t", c0.id) == {"1:a:0": a, "1:b:0": b}
    assert list(store.get_writes("t", c0.id)) == ["1:a:0", "1:b:0"]
    assert store.get_writes("t", c1.id) == {"2:c:0": c}
    assert store.get_writes("other", c0.id) == {}
    a2 = PendingWrite("1:a:0", "a", [("n", 2)], {"n": 2}, ["b"])
    store.put_writes("t", c0.id, a2)
    assert store.get_writes("t", c0.id) == {"1:a:0": a2, "1:b:0": b}


def test_journal_is_in_index_order_per_task(store: Checkpointer) -> None:
    for index, value in [(2, "two"), (0, {"zero": 0}), (1, [1]), (10, None)]:
        store.put_journal("t", "task-a", index, value)
    store.put_journal("t", "task-b", 0, "b0")
    store.put_journal("u", "task-a", 0, "other thread")
    assert store.get_journal("t", "task-a") == [{"zero": 0}, [1], "two", None]
    assert store.get_journal("t", "task-b") == ["b0"]
    assert store.get_journal("u", "task-a") == ["other thread"]
    store.put_journal("t", "task-a", 1, "replaced")
    assert store.get_journal("t", "task-a") == [{"zero": 0}, "replaced", "two", None]


# -- threads --------------------------------------------------------------------------------------

def test_delete_thread_removes_everything_of_that_thread_only(store: Checkpointer) -> None:
    for thread in ("t", "keep"):
        lin = Lineage(store, thread)
        cps = lin.grow(5)
        store.put_writes(thread, cps[-1].id, PendingWrite("task", "n", [("n", 1)]))
        store.put_journal(thread, "task", 0, "j")
    head = store.get("t").id
    store.delete_thread("t")
    assert store.get("t") is None
    assert store.get("t", head) is None
    assert store.list("t") == []
    assert store.chain("t") == []
    assert store.get_writes("t", head) == {}
    assert store.get_journal("t", "task") == []
    assert store.threads() == ["keep"]
    assert len(store.list("keep")) == 5
    assert store.get_journal("keep", "task") == ["j"]
    assert store.get_writes("keep", store.get("keep").id) != {}
    store.delete_thread("never existed")
    lin = Lineage(store, "t")  # the name can be used again from scratch
    lin.grow(2)
    assert replay(store.chain("t")) == lin.values[lin.put_order[-1]]


def test_threads_are_sorted_and_odd_names_round_trip(store: Checkpointer) -> None:
    names = [*ODD_THREADS, "b", "A", "a"]
    for name in names:
        lin = Lineage(store, name)
        lin.grow(4)
        head = lin.put_order[-1]
        store.put_writes(name, head, PendingWrite(f"{name}/task", "n", [("n", name)]))
        store.put_journal(name, f"{name}/task", 0, name)
    assert store.threads() == sorted(names)
    for name in names:
        head = store.get(name)
        assert head is not None and head.thread == name
        assert replay(store.chain(name)) == {"log": [f"{'x' * 20}{i}" for i in range(4)],
                                             "n": 3}
        assert store.get_writes(name, head.id)[f"{name}/task"].writes == [("n", name)]
        assert store.get_journal(name, f"{name}/task") == [name]
        assert len(store.list(name)) == 4
    store.delete_thread("a|b:c")
    assert store.threads() == sorted(set(names) - {"a|b:c"})


# -- values through serde -------------------------------------------------------------------------

RICH = {
    "when": datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    "naive": datetime(2024, 1, 2, 3, 4, 5),
    "day": date(2024, 2, 29),
    "span": timedelta(days=1, seconds=2, microseconds=3),
    "pair": (1, "two", (3.5, None)),
    "blob": b"\x00\xffbinary",
    "tags": {"b", "a"},
    "money": Decimal("12.3400"),
    "uid": uuid.UUID(int=42),
    "nested": {"a": {"b": {"c": [1, {"d": (2, 3)}], "e": b"x"}}, "__gf__": "escaped"},
    "int_keys": {1: "one", (2, 3): "tuple key"},
    "send": Send("worker", {"i": 1}),
    "text": "unicode ✓ 日本 \x00 nul",
}


def test_values_round_trip_through_serde(store: Checkpointer) -> None:
    first = Checkpoint(id="c0", thread="t", step=0, values={"log": [], **RICH},
                       next=[("worker", 0, RICH["pair"]), ("worker", 1, RICH["nested"])],
                       writes=[("__start__", k, v) for k, v in RICH.items()])
    store.put(first)
    got = store.get("t")
    assert got.values == {"log": [], **RICH}
    assert got.values["pair"] == (1, "two", (3.5, None)) and isinstance(got.values["pair"], tuple)
    assert [tuple(w) for w in got.writes] == [("__start__", k, v) for k, v in RICH.items()]
    assert got.next[0][2] == RICH["pair"] and got.next[1][2] == RICH["nested"]
    # as a delta row's writes, too
    child = Checkpoint(id="c1", thread="t", step=1, values={**got.values, "pair": (9, 9)},
                       next=[], parent_id="c0", writes=[("n", "pair", (9, 9))])
    store.put(child)
    chain = store.chain("t")
    assert replay(chain) == {**got.values, "pair": (9, 9)}
    pw = PendingWrite("task", "n", [("pair", RICH["pair"]), ("blob", b"b")],
                      {"when": RICH["when"]}, ["x", Send("y", (1, 2))])
    store.put_writes("t", "c1", pw)
    assert store.get_writes("t", "c1") == {"task": pw}
    store.put_journal("t", "task", 0, RICH)
    assert store.get_journal("t", "task") == [RICH]


def test_unserializable_values_raise_naming_node_and_key(sql: Backend) -> None:
    from graphflow.checkpoint.serde import SerializationError

    store = sql.open()
    bad = Checkpoint(id="c0", thread="t", step=0, values={"log": []}, next=[],
                     writes=[("agent", "messages", [1, {"content": object()}])])
    with pytest.raises(SerializationError,
                       match=r"node 'agent' wrote key 'messages'.*at messages\[1\]\.content"):
        store.put(bad)
    assert store.get("t") is None


# -- async ----------------------------------------------------------------------------------------

def test_async_twins(store: Checkpointer) -> None:
    async def main() -> None:
        c0 = Checkpoint(id="c0", thread="t", step=0, values={"log": ["a"]}, next=[],
                        writes=[("s", "log", ["a"])])
        c1 = Checkpoint(id="c1", thread="t", step=1, values={"log": ["a", "b"]}, next=[],
                        parent_id="c0", writes=[("n", "log", ["b"])])
        await store.aput(c0)
        await store.aput(c1)
        assert (await store.aget("t")).id == "c1"
        assert (await store.aget("t", "c0")).id == "c0"
        assert [c.id for c in await store.alist("t")] == ["c1", "c0"]
        assert [c.id for c in await store.alist("t", limit=1)] == ["c1"]
        assert replay(await store.achain("t")) == {"log": ["a", "b"]}
        assert replay(await store.achain("t", "c0")) == {"log": ["a"]}
        pw = PendingWrite("task", "n", [("log", ["c"])])
        await store.aput_writes("t", "c1", pw)
        assert await store.aget_writes("t", "c1") == {"task": pw}
        await asyncio.gather(*(store.aput_journal("t", "task", i, i * 10) for i in range(5)))
        assert await store.aget_journal("t", "task") == [0, 10, 20, 30, 40]
        assert await store.athreads() == ["t"]
        await store.adelete_thread("t")
        assert await store.athreads() == []
        assert await store.aget("t") is None

    asyncio.run(main())


# -- concurrency ----------------------------------------------------------------------------------

def test_concurrent_puts_from_threads(backend: Backend) -> None:
    store = backend.open()
    errors: list[BaseException] = []
    lineages: dict[str, Lineage] = {}
    root = Lineage(store, "shared")
    root.put([("s", "log", ["root"])], first=True)
    barrier = threading.Barrier(8)

    def work(k: int) -> None:
        try:
            lin = lineages[f"w{k}"] = Lineage(store, f"w{k}")
            barrier.wait()
            for i in range(40):
                lin.put([("n", "log", [f"{k}-{i}"])], first=(i == 0))
                if i % 4 == 0:  # forks of one root in a shared thread, racing each other
                    root_id = root.put_order[0]
                    cp = Checkpoint(
                        id=new_checkpoint_id(), thread="shared", step=1,
                        values=reduce(root.values[root_id], [("n", "log", [f"{k}-{i}"])]),
                        next=[], parent_id=root_id, writes=[("n", "log", [f"{k}-{i}"])])
                    store.put(cp)
                    store.get("shared")
                    store.chain(f"w{k}")
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    for name, lin in lineages.items():
        assert [c.id for c in store.list(name)] == lin.put_order[::-1]
        assert replay(store.chain(name)) == {"log": [f"{name[1:]}-{i}" for i in range(40)]}
    shared = store.list("shared")
    assert len(shared) == 1 + 8 * 10
    for cp in shared[:-1]:
        chain = store.chain("shared", cp.id)
        assert len(chain) <= 2
        assert replay(chain)["log"][0] == "root"
    assert store.threads() == sorted(["shared", *lineages])


# -- SQL-only: durability, schema, corruption -----------------------------------------------------

def test_reopening_finds_everything(sql: Backend) -> None:
    first = sql.open()
    lin = Lineage(first, "t")
    lin.grow(10)
    first.put_writes("t", lin.put_order[-1], PendingWrite("task", "n", [("n", 1)]))
    first.put_journal("t", "task", 0, "j")
    first.close()  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="closed"):
        first.get("t")
    with sql.make() as again:  # type: ignore[attr-defined]
        assert [c.id for c in again.list("t")] == lin.put_order[::-1]
        assert replay(again.chain("t")) == lin.values[lin.put_order[-1]]
        assert again.get_writes("t", lin.put_order[-1])["task"].writes == [("n", 1)]
        assert again.get_journal("t", "task") == ["j"]
        again.delete_thread("t")
    assert sql.q("SELECT count(*) FROM graphflow_checkpoints") == [(0,)]


def test_sqlite_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    with SqliteCheckpointer(path) as store:
        store.put(Checkpoint(id="c", thread="t", step=0, values={}, next=[]))
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"graphflow_checkpoints", "graphflow_writes", "graphflow_journal"} <= tables
    conn.close()
    with SqliteCheckpointer(":memory:") as mem:
        mem.put(Checkpoint(id="c", thread="t", step=0, values={"a": 1}, next=[]))
        assert mem.get("t").values == {"a": 1}


def test_putting_an_id_twice_is_refused(sql: Backend) -> None:
    store = sql.open()
    cp = Checkpoint(id="c0", thread="t", step=0, values={}, next=[])
    store.put(cp)
    with pytest.raises(ValueError, match="already stored"):
        store.put(cp)
    store.put(Checkpoint(id="c0", thread="u", step=0, values={}, next=[]))  # other thread: fine
    assert len(store.list("t")) == 1


@pytest.mark.parametrize(("column", "garbage", "match"), [
    ("writes", "{not json", "not valid JSON"),
    ("writes", '[["n", "log", {"__gf__": "no-such-tag", "v": 1}]]', "no-such-tag"),
    ("next", '"a string"', "expected a list"),
    ("metadata", "[1, 2]", "expected an object"),
    ("joins", '{"x": ["a"]}', "invalid literal"),
])
def test_a_corrupted_row_raises_naming_thread_and_checkpoint(
        sql: Backend, column: str, garbage: str, match: str) -> None:
    store = sql.open()
    lin = Lineage(store, "th|read:1")
    lin.put([("n", "log", ["s" * 5000])], first=True)
    cps = lin.grow(5)
    victim = cps[2].id
    assert not has_snapshot(sql, "th|read:1", victim)
    sql.q(f"UPDATE graphflow_checkpoints SET {column} = ? WHERE thread = ? AND id = ?",
          (garbage, "th|read:1", victim))
    # chain() decodes in full the record it leads to, and of the records before it what
    # replay reads (writes): a corrupted `writes` fails the head's chain too
    calls = [lambda: store.chain("th|read:1", victim), lambda: store.get("th|read:1", victim),
             lambda: store.list("th|read:1")]
    if column == "writes":
        calls.append(lambda: store.chain("th|read:1"))
    for call in calls:
        with pytest.raises(CorruptCheckpointError) as info:
            call()
        message = str(info.value)
        assert "'th|read:1'" in message and repr(victim) in message and column in message
        assert match in message
    assert store.get("th|read:1", cps[1].id) is not None  # other rows still load


def test_a_corrupted_snapshot_raises(sql: Backend) -> None:
    store = sql.open()
    lin = Lineage(store, "t")
    cps = lin.grow(3)
    sql.q("UPDATE graphflow_checkpoints SET snapshot = ? WHERE thread = ? AND id = ?",
          ('{"x": {"__gf__": "model", "t": "NotRegistered", "v": {}}}', "t", cps[0].id))
    for call in (lambda: store.chain("t", cps[0].id), lambda: store.get("t", cps[0].id)):
        with pytest.raises(CorruptCheckpointError, match=rf"thread 't' checkpoint '{cps[0].id}'"
                                                         rf".*'snapshot'.*NotRegistered"):
            call()


def test_a_broken_parent_link_raises_instead_of_losing_history(sql: Backend) -> None:
    store = sql.open()
    lin = Lineage(store, "t")
    lin.put([("n", "log", ["s" * 5000])], first=True)
    cps = lin.grow(5)
    sql.q("DELETE FROM graphflow_checkpoints WHERE thread = ? AND id = ?", ("t", cps[1].id))
    with pytest.raises(CorruptCheckpointError) as info:
        store.chain("t")
    assert "thread 't'" in str(info.value) and cps[1].id in str(info.value)
    sql.q("UPDATE graphflow_checkpoints SET parent_id = id WHERE thread = ? AND id = ?",
          ("t", cps[3].id))  # a cycle: the walk still terminates
    with pytest.raises(CorruptCheckpointError, match="lineage breaks"):
        store.chain("t")


def test_corrupted_pending_writes_and_journal_raise(sql: Backend) -> None:
    store = sql.open()
    store.put_writes("t", "c0", PendingWrite("task", "n", [("n", 1)]))
    store.put_journal("t", "task", 0, "ok")
    store.put_journal("t", "task", 1, "ok")
    sql.q("UPDATE graphflow_writes SET goto = ? WHERE thread = ?", ("{oops", "t"))
    sql.q("UPDATE graphflow_journal SET value = ? WHERE thread = ? AND idx = 1",
          ('{"__gf__": "bogus", "v": 0}', "t"))
    with pytest.raises(CorruptCheckpointError, match=r"thread 't' checkpoint 'c0'.*task 'task'"):
        store.get_writes("t", "c0")
    with pytest.raises(CorruptCheckpointError, match=r"thread 't' task 'task' journal entry 1"):
        store.get_journal("t", "task")


def test_a_foreign_table_with_our_name_is_reported(sql: Backend) -> None:
    sql.q("CREATE TABLE graphflow_checkpoints (id TEXT, payload TEXT)")
    store = sql.open()
    with pytest.raises(CorruptCheckpointError, match=r"graphflow_checkpoints.*lacks column"):
        store.get("t")


def test_postgres_import_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphflow.checkpoint import postgres

    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ImportError, match=r'pip install "graphflow\[postgres\]"'):
        postgres.PostgresCheckpointer("postgresql://nowhere")
