"""Stored data is untrusted input (issue 8), and a value that cannot be stored says where it is.

Reading: a tampered row (invalid UTF-8, a huge number, a model that fails validation, a hostile
time-zone key, random garbage) raises :class:`CorruptCheckpointError` naming the thread, the
checkpoint and the column, quickly, and never imports or runs anything named in the data.
Writing: an unserializable value names the node and the state key it wrote (or the journaled
step, the interrupt, the Send), on every checkpointer that serializes.

Store-level tests run on SQLite and PostgreSQL (``sql`` fixture, a fresh schema per test for
PostgreSQL); graph-level ones take the shared ``saver`` fixture (memory, SQLite, PostgreSQL).
"""

from __future__ import annotations

import builtins
import dataclasses
import importlib
import json
import operator
import sqlite3
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypedDict
from zoneinfo import ZoneInfo

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphflow import END, START, Command, Send, StateGraph, interrupt
from graphflow.checkpoint import Checkpoint, MemoryCheckpointer, PendingWrite, register_type
from graphflow.checkpoint.serde import SerializationError, dumps, loads
from graphflow.checkpoint.sqlite import CorruptCheckpointError, SqliteCheckpointer

pytestmark = pytest.mark.timeout(60)



# -- backends: a store plus raw SQL on its tables ----------------------------------------------

@dataclasses.dataclass
class Sql:
    name: str
    store: Any
    run: Callable[..., list[tuple[Any, ...]]]  # (query with ?, params) -> rows
    placeholder: str = "?"

    def q(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.run(query.replace("?", self.placeholder), params)


@pytest.fixture
def pg_schema(pg_dsn: str) -> Iterator[str]:
    """A DSN whose search_path is a fresh schema (dropped afterwards)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    schema = f"gf_stored_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield make_conninfo(pg_dsn, options=f"-c search_path={schema}")
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def _sqlite(tmp_path: Path) -> Iterator[Sql]:
    path = tmp_path / "stored.db"

    def run(query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.text_factory = bytes  # read back exactly what is stored
        try:
            return conn.execute(query, params).fetchall()
        finally:
            conn.close()

    with SqliteCheckpointer(path) as store:
        yield Sql("sqlite", store, run)


@contextmanager
def _postgres(dsn: str) -> Iterator[Sql]:
    import psycopg

    from graphflow.checkpoint.postgres import PostgresCheckpointer

    def run(query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with psycopg.connect(dsn, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    with PostgresCheckpointer(dsn) as store:
        yield Sql("postgres", store, run, "%s")


@pytest.fixture(params=["sqlite", "postgres"])
def sql(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sql]:
    if request.param == "sqlite":
        with _sqlite(tmp_path) as backend:
            yield backend
    else:
        with _postgres(request.getfixturevalue("pg_schema")) as backend:
            yield backend


def seed(store: Any, thread: str = "t") -> None:
    """Two checkpoints (a snapshot and a delta), a pending write and a journal entry."""
    store.put(Checkpoint(id="c0", thread=thread, step=0, values={"log": ["a"]},
                         next=[("n", -1, None)], writes=[("__start__", "log", ["a"])]))
    store.put(Checkpoint(id="c1", thread=thread, step=1, values={"log": ["a", "b"]},
                         next=[], parent_id="c0", writes=[("n", "log", ["b"])]))
    store.put_writes(thread, "c0", PendingWrite("task", "n", [("log", ["b"])]))
    store.put_journal(thread, "task", 0, {"name": "s", "value": 1})


READERS: dict[str, Callable[[Any], Any]] = {
    "get": lambda s: s.get("t", "c1"),
    "get head": lambda s: s.get("t"),
    "list": lambda s: s.list("t"),
    "chain": lambda s: s.chain("t"),
    "pending writes": lambda s: s.get_writes("t", "c0"),
    "journal": lambda s: s.get_journal("t", "task"),
    "threads": lambda s: s.threads(),
}

# (table, column, WHERE clause, the readers that see that row, what the error names)
TEXT_COLUMNS = [
    ("graphflow_checkpoints", "writes", "id = 'c1'", ["get", "get head", "list", "chain"],
     "thread 't' checkpoint 'c1'"),
    ("graphflow_checkpoints", "snapshot", "id = 'c0'", ["list"], "thread 't' checkpoint 'c0'"),
    ("graphflow_checkpoints", "metadata", "id = 'c1'", ["get", "list", "chain"],
     "thread 't' checkpoint 'c1'"),
    ("graphflow_checkpoints", "next", "id = 'c0'", ["list"], "thread 't' checkpoint 'c0'"),
    ("graphflow_checkpoints", "joins", "id = 'c1'", ["get", "chain"],
     "thread 't' checkpoint 'c1'"),
    ("graphflow_checkpoints", "parent_id", "id = 'c1'", ["get", "list"],
     "thread 't' checkpoint 'c1'"),
    ("graphflow_checkpoints", "id", "id = 'c1'", ["get head", "list"], "thread 't' checkpoint"),
    ("graphflow_checkpoints", "thread", "id = 'c1'", ["threads"], "graphflow_checkpoints"),
    ("graphflow_writes", "writes", "task_id = 'task'", ["pending writes"],
     "thread 't' checkpoint 'c0' pending write of task 'task'"),
    ("graphflow_writes", "update_value", "task_id = 'task'", ["pending writes"],
     "thread 't' checkpoint 'c0' pending write of task 'task'"),
    ("graphflow_writes", "goto", "task_id = 'task'", ["pending writes"],
     "thread 't' checkpoint 'c0' pending write of task 'task'"),
    ("graphflow_writes", "node", "task_id = 'task'", ["pending writes"],
     "thread 't' checkpoint 'c0' pending write of task 'task'"),
    ("graphflow_journal", "value", "task_id = 'task'", ["journal"],
     "thread 't' task 'task' journal entry 0"),
]


# -- invalid UTF-8 --------------------------------------------------------------------------------

@pytest.mark.parametrize(("table", "column", "where", "readers", "named"), TEXT_COLUMNS,
                         ids=[f"{t[len('graphflow_'):]}.{c}" for t, c, *_ in TEXT_COLUMNS])
def test_invalid_utf8_in_any_sqlite_text_column_is_a_corrupt_checkpoint_naming_it(
        tmp_path: Path, table: str, column: str, where: str, readers: list[str],
        named: str) -> None:
    with _sqlite(tmp_path) as backend:
        seed(backend.store)
        # a valid prefix, then a byte that is never valid in UTF-8
        backend.q(f"UPDATE {table} SET {column} = CAST(X'5b2261ff225d' AS TEXT) WHERE {where}")
        assert backend.q(f"SELECT count(*) FROM {table} WHERE {column} = "
                         f"CAST(X'5b2261ff225d' AS TEXT)") == [(1,)]
        for reader in readers:
            with pytest.raises(CorruptCheckpointError) as info:
                READERS[reader](backend.store)
            message = str(info.value)
            assert named in message and f"column {column!r}" in message, (reader, message)
            assert "not valid UTF-8" in message, (reader, message)


def test_postgres_refuses_to_store_invalid_utf8(pg_schema: str) -> None:
    """A UTF8 database validates text on the way in: a tampered row cannot hold bad bytes."""
    import psycopg

    with _postgres(pg_schema) as backend:
        seed(backend.store)
        with pytest.raises(psycopg.errors.CharacterNotInRepertoire):
            backend.q("UPDATE graphflow_checkpoints SET writes = convert_from(?, 'UTF8')",
                      (b'["a\xff"]',))
        assert backend.store.get("t").id == "c1"


@pytest.fixture
def sql_ascii_dsn(pg_dsn: str) -> Iterator[str]:
    """A throwaway PostgreSQL database in SQL_ASCII: it stores text bytes unchecked."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"gf_sqlascii_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        try:
            conn.execute(f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' LC_COLLATE 'C' "
                         f"LC_CTYPE 'C' TEMPLATE template0")
        except psycopg.Error as exc:
            pytest.skip(f"cannot create an SQL_ASCII database here ({exc})")
    try:
        params = conninfo_to_dict(pg_dsn)
        params["dbname"] = name
        yield make_conninfo(**params)
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_postgres_sql_ascii_database_works_and_reports_bytes_that_are_not_utf8(
        sql_ascii_dsn: str) -> None:
    """psycopg returns text as bytes on an SQL_ASCII database: the store still reads str back,
    and a row holding invalid UTF-8 is a corrupt checkpoint naming the column."""
    with _postgres(sql_ascii_dsn) as backend:
        store = backend.store
        seed(store, thread="ünï 日本")
        assert store.threads() == ["ünï 日本"]
        cp = store.get("ünï 日本")
        assert (cp.id, cp.parent_id, cp.writes) == ("c1", "c0", [("n", "log", ["b"])])
        assert store.chain("ünï 日本")[-1].id == "c1"
        assert store.get_writes("ünï 日本", "c0")["task"].node == "n"
        backend.q("UPDATE graphflow_checkpoints SET writes = convert_from(?, 'SQL_ASCII') "
                  "WHERE id = 'c1'", (b'["a\xff"]',))
        with pytest.raises(CorruptCheckpointError,
                           match=r"thread 'ünï 日本' checkpoint 'c1': column 'writes' holds "
                                 r"text that is not valid UTF-8"):
            store.get("ünï 日本")
        backend.q("UPDATE graphflow_journal SET value = convert_from(?, 'SQL_ASCII')",
                  (b"\xfe",))
        with pytest.raises(CorruptCheckpointError, match=r"journal entry 0: column 'value'"):
            store.get_journal("ünï 日本", "task")


def test_tampered_bookkeeping_columns_fail_the_next_put_clearly(tmp_path: Path) -> None:
    """SQLite columns take any type (PostgreSQL's BIGINT columns refuse text)."""
    with _sqlite(tmp_path) as sql:
        seed(sql.store)
        sql.q("UPDATE graphflow_checkpoints SET delta_bytes = 'many' WHERE id = 'c1'")
        with pytest.raises(CorruptCheckpointError,
                           match=r"thread 't' checkpoint 'c1': column 'delta_bytes' holds "
                                 r"'many', not an integer"):
            sql.store.put(Checkpoint(id="c2", thread="t", step=2, values={"log": []}, next=[],
                                     parent_id="c1", writes=[("n", "log", ["c"])]))
        assert [c.id for c in sql.store.list("t")] == ["c1", "c0"]


# -- numbers --------------------------------------------------------------------------------------

def test_a_huge_integer_literal_is_refused_not_parsed(sql: Sql) -> None:
    """Converting a 200,000-digit literal took seconds (a 1 MB one over a minute) and then
    succeeded; now it is refused as corrupted data."""
    seed(sql.store)
    sql.q("UPDATE graphflow_checkpoints SET writes = ? WHERE id = 'c1'",
          ('[["n", "log", [' + "7" * 200_000 + "]]]",))
    with pytest.raises(CorruptCheckpointError,
                       match=r"thread 't' checkpoint 'c1': column 'writes'.*integer literal of "
                             r"200000 characters; at most 5000 digits"):
        sql.store.get("t")


@pytest.mark.parametrize(("text", "problem"), [
    ("[-" + "1" * 1_000_000 + "]", "integer literal of 1000001 characters"),
    ('{"__gf__": "decimal", "v": "1e999999999999"}', "exponent"),
    ('{"__gf__": "decimal", "v": "' + "9" * 100_000 + '"}', "a decimal of 100000 characters"),
    ('{"__gf__": "decimal", "v": "-1E-1000000000"}', "exponent"),
])
def test_hostile_numbers_fail_clearly(text: str, problem: str) -> None:
    with pytest.raises(SerializationError, match="corrupted") as info:
        loads(text)
    assert problem in str(info.value)


def test_numbers_within_the_bounds_still_load() -> None:
    assert loads("[" + "9" * 5_000 + "]") == [10**5_000 - 1]
    assert loads("[1e999]") == [float("inf")]  # a float literal beyond range is inf, at once
    assert loads('{"__gf__": "decimal", "v": "1.5E+999999"}') == Decimal("1.5E+999999")
    assert loads(dumps(Decimal("-0.000001"))) == Decimal("-0.000001")
    big = 7 ** 100_000  # hex-tagged: linear to read
    assert loads(dumps(big)) == big


# -- registered classes are validated -------------------------------------------------------------

@register_type(name="stored.Invoice")
class Invoice(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    number: int
    amount: Decimal = Decimal(0)
    note: str = ""

    @pydantic.field_validator("number")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("an invoice number is positive")
        return v


@register_type(name="stored.Aliased")
class Aliased(pydantic.BaseModel):
    user_name: str = pydantic.Field(alias="userName")


@register_type(name="stored.Point")
@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


def _model(t: str, v: Any, **extra: Any) -> str:
    return json.dumps({"__gf__": "model", "t": t, "v": v, **extra})


@pytest.mark.parametrize(("stored", "problem"), [
    (_model("stored.Invoice", {"number": "not a number"}), "number"),
    (_model("stored.Invoice", {"number": -3}), "an invoice number is positive"),
    (_model("stored.Invoice", {"number": 1, "admin": True}), "admin"),
    (_model("stored.Invoice", {}), "number"),
    (_model("stored.Invoice", {"number": 1}, s=[1]), "set fields"),
    (_model("stored.Point", {"x": 1, "evil": 2}), "no field(s) ['evil']"),
    (_model("stored.Point", {"y": 1}), "x"),
])
def test_a_registered_model_in_stored_data_is_validated(stored: str, problem: str) -> None:
    with pytest.raises(SerializationError, match="corrupted") as info:
        loads(stored)
    assert problem in str(info.value)


def test_valid_models_still_round_trip_with_their_fields_set() -> None:
    inv = Invoice(number=7, amount=Decimal("1.10"))
    back = loads(dumps([inv, Aliased(userName="ada"), Point(1, 2)]))
    assert back == [inv, Aliased(userName="ada"), Point(1, 2)]
    assert back[0].model_fields_set == {"number", "amount"}
    assert loads(_model("stored.Invoice", {"number": "12"})).number == 12  # as Invoice(...) does


def test_a_model_failing_validation_in_a_row_names_the_thread_checkpoint_and_column(
        sql: Sql) -> None:
    sql.store.put(Checkpoint(id="c0", thread="t", step=0, values={"inv": Invoice(number=1)},
                             next=[], writes=[("n", "inv", Invoice(number=1))]))
    assert sql.store.get("t").values == {"inv": Invoice(number=1)}
    sql.q("UPDATE graphflow_checkpoints SET snapshot = ?",
          (json.dumps({"inv": json.loads(_model("stored.Invoice", {"number": 0}))}),))
    with pytest.raises(CorruptCheckpointError,
                       match=r"(?s)thread 't' checkpoint 'c0': column 'snapshot'.*Invoice.*"
                             r"an invoice number is positive"):
        sql.store.get("t")


# -- time-zone keys -------------------------------------------------------------------------------

def _zoned(key: Any) -> str:
    return json.dumps({"__gf__": "datetime", "v": "2024-03-01T12:00:00+01:00", "tz": key})


@pytest.fixture
def imports(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The modules imported (by statement or importlib) while the test runs."""
    seen: list[str] = []
    real_import, real_import_module = builtins.__import__, importlib.import_module

    def spy_import(name: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(name)
        return real_import(name, *args, **kwargs)

    def spy_import_module(name: str, package: str | None = None) -> Any:
        seen.append(name)
        return real_import_module(name, package)

    monkeypatch.setattr(builtins, "__import__", spy_import)
    monkeypatch.setattr(importlib, "import_module", spy_import_module)
    return seen


@pytest.mark.parametrize("key", [
    "../../../../etc/passwd", "/etc/localtime", "Europe/../../etc/passwd", "tzdata.zoneinfo",
    "os.path", "Europe\\Paris", "Europe/", "", " Europe/Paris", "Europe/Paris\x00",
    "No/Such/Zone", "Nowhere", "__init__", "America", "zone.tab", "a" * 300, 5, ["UTC"],
])
def test_a_hostile_time_zone_key_is_refused_without_importing_by_its_name(
        key: Any, imports: list[str]) -> None:
    loads(_zoned("Europe/Paris"))  # zoneinfo and friends imported once, legitimately
    imports.clear()
    with pytest.raises(SerializationError, match=r"corrupted.*'datetime'"):
        loads(_zoned(key))
    assert not [name for name in imports if name.startswith("tzdata.")], imports


def test_a_valid_time_zone_key_gives_the_cached_zone_as_user_code_would() -> None:
    when = loads(_zoned("Europe/Paris"))
    assert when.tzinfo is ZoneInfo("Europe/Paris")
    assert when == datetime(2024, 3, 1, 12, tzinfo=ZoneInfo("Europe/Paris"))
    assert loads(_zoned("Etc/GMT+5")).tzinfo is ZoneInfo("Etc/GMT+5")
    assert loads(_zoned("UTC")).tzinfo is ZoneInfo("UTC")


# -- what a node wrote, named when it cannot be stored --------------------------------------------

class Blobs(TypedDict, total=False):
    blob: Any
    log: Annotated[list, operator.add]


def _sql_saver_or_skip(saver: Any) -> None:
    if isinstance(saver, MemoryCheckpointer):
        pytest.skip("MemoryCheckpointer keeps values as they are: nothing is serialized")


def _one_node(saver: Any, fn: Callable[..., Any], *, parallel: bool = False) -> Any:
    g = StateGraph(Blobs)
    g.add_node("put", fn)
    g.add_edge(START, "put")
    g.add_edge("put", END)
    if parallel:
        g.add_node("other", lambda s: {"log": ["other"]})
        g.add_edge(START, "other")
        g.add_edge("other", END)
    return g.compile(checkpointer=saver)


@pytest.mark.parametrize("parallel", [False, True], ids=["lone task", "parallel tasks"])
def test_an_unserializable_write_names_the_node_and_the_key(saver: Any, parallel: bool) -> None:
    _sql_saver_or_skip(saver)
    app = _one_node(saver, lambda s: {"blob": {"ok": 1, "bad": [object()]}}, parallel=parallel)
    thread = uuid.uuid4().hex
    with pytest.raises(SerializationError) as info:
        app.invoke({"log": []}, thread=thread)
    message = str(info.value)
    assert "node 'put' wrote key 'blob': cannot serialize a value of type object at " \
           "blob.bad[0]" in message, message
    assert info.value.path == "blob.bad[0]"
    assert f"thread {thread!r}" in message


def test_an_unserializable_write_names_the_node_in_async_runs_too(saver: Any) -> None:
    import asyncio

    _sql_saver_or_skip(saver)

    async def put(s: Blobs) -> dict[str, Any]:
        return {"blob": object()}

    app = _one_node(saver, put, parallel=True)
    with pytest.raises(SerializationError, match=r"node 'put' wrote key 'blob'.* at blob:"):
        asyncio.run(app.ainvoke({"log": []}, thread=uuid.uuid4().hex))


def test_checkpoint_writes_name_the_node_and_the_key(saver: Any) -> None:
    _sql_saver_or_skip(saver)
    app = _one_node(saver, lambda s: {"log": ["ran"]})
    thread = uuid.uuid4().hex
    with pytest.raises(SerializationError, match=r"the run's input wrote key 'blob'.* at blob:"):
        app.invoke({"blob": object()}, thread=thread)
    app.invoke({"log": []}, thread=thread)
    with pytest.raises(SerializationError, match=r"node 'put' wrote key 'blob'.* at blob\[1\]:"):
        app.update_state(thread, {"blob": [1, object()]}, as_node="put")


def test_a_journaled_step_result_names_the_step(saver: Any) -> None:
    _sql_saver_or_skip(saver)

    def put(s: Blobs, ctx: Any) -> dict[str, Any]:
        ctx.step("charge card", lambda: {"receipt": object()})
        return {}

    app = _one_node(saver, put)
    with pytest.raises(SerializationError) as info:  # raised in the node: as itself
        app.invoke({"log": []}, thread=uuid.uuid4().hex)
    message = str(info.value)
    assert info.value.graphflow_node == "put"
    assert "raised in node 'put'" in "\n".join(info.value.__notes__)
    assert "the result of journaled step 'charge card' (journal entry 0): cannot serialize a " \
           "value of type object at result.receipt" in message, message


def test_an_interrupt_value_and_a_resume_value_are_named(saver: Any) -> None:
    _sql_saver_or_skip(saver)
    app = _one_node(saver, lambda s: {"log": [interrupt({"question": object()})]})
    with pytest.raises(SerializationError,
                       match=r"node 'put' called interrupt\(\) with a value that cannot be "
                             r"stored: .* at value\.question"):
        app.invoke({"log": []}, thread=uuid.uuid4().hex)
    ok = _one_node(saver, lambda s: {"log": [str(interrupt("ok?"))]})
    thread = uuid.uuid4().hex
    ok.invoke({"log": []}, thread=thread)
    with pytest.raises(SerializationError,
                       match=r"the Command\(resume=\.\.\.\) value for interrupt #0: .* at resume"):
        ok.invoke(Command(resume=object()), thread=thread)


def test_a_send_argument_is_named_with_its_target_node(saver: Any) -> None:
    _sql_saver_or_skip(saver)
    g = StateGraph(Blobs)
    g.add_node("work", lambda arg: {"log": ["w"]})
    g.add_conditional_edges(START, lambda s: [Send("work", {"item": object()})], ["work"])
    g.add_edge("work", END)
    app = g.compile(checkpointer=saver)
    with pytest.raises(SerializationError,
                       match=r"the Send to node 'work' \(task #0 of the next step\) carries an "
                             r"argument that cannot be stored: .* at arg\.item"):
        app.invoke({"log": []}, thread=uuid.uuid4().hex)


# -- random tampering ---------------------------------------------------------------------------

_TAGS = ["tuple", "set", "frozenset", "dict", "bytes", "bytearray", "datetime", "date", "time",
         "timedelta", "uuid", "decimal", "float", "int", "send", "enum", "model", "pickle",
         "object", "__import__", "eval"]
_NAMES = ["stored.Invoice", "stored.Point", "graphflow.AIMessage", "graphflow.Interrupt",
          "os.system", "builtins.eval", "subprocess.Popen", "pickle.loads", "Invoice", ""]

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                      st.text(max_size=12), st.sampled_from(["Europe/Paris", "../etc", "1e999",
                                                             "nan", "AAAA", "2024-01-01"]))


def _tagged(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(lambda tag, v: {"__gf__": tag, "v": v}, st.sampled_from(_TAGS), children),
        st.builds(lambda tag, name, v: {"__gf__": tag, "t": name, "v": v},
                  st.sampled_from(["model", "enum"]), st.sampled_from(_NAMES), children),
        st.builds(lambda v, tz: {"__gf__": "datetime", "v": v, "tz": tz},
                  st.sampled_from(["2024-01-01T00:00:00", "x"]), children),
    )


json_value = st.recursive(
    json_leaf,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=6), children, max_size=4),
                               _tagged(children)),
    max_leaves=12)

tampering = st.one_of(
    json_value.map(lambda v: json.dumps(v).encode()),               # well-formed, odd JSON
    st.binary(max_size=40),                                            # raw bytes
    st.builds(lambda v, cut: json.dumps(v).encode()[:cut], json_value,  # truncated JSON
              st.integers(0, 40)),
    st.sampled_from([b"", b"null", b"[" * 5000, b'"\xff"', b"\xed\xa0\x80", b"1" * 6000]),
)

_TAMPER_TARGETS = [(t, c, w) for t, c, w, *_ in TEXT_COLUMNS]


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(target=st.sampled_from(_TAMPER_TARGETS), data=tampering, as_text=st.booleans())
def test_random_tampering_never_runs_code_and_only_raises_corrupt_checkpoint(
        tmp_path_factory: pytest.TempPathFactory, target: tuple[str, str, str], data: bytes,
        as_text: bool) -> None:
    table, column, where = target
    path = tmp_path_factory.mktemp("tamper") / "t.db"
    with SqliteCheckpointer(path) as store:
        seed(store)
        for reader in READERS.values():  # every decoder and lazy import warmed up first
            reader(store)
        loads(_zoned("Europe/Paris"))
        conn = sqlite3.connect(path, isolation_level=None)
        cast = "CAST(? AS TEXT)" if as_text else "?"
        conn.execute(f"UPDATE {table} SET {column} = {cast} WHERE {where}", (data,))
        conn.close()
        modules = set(sys.modules)
        real_import = builtins.__import__

        def no_new_imports(name: str, *args: Any, **kwargs: Any) -> Any:
            if name not in sys.modules:
                raise AssertionError(f"reading tampered data imported {name!r}")
            return real_import(name, *args, **kwargs)

        builtins.__import__ = no_new_imports
        try:
            for reader in READERS.values():
                with suppress(CorruptCheckpointError):
                    reader(store)
        finally:
            builtins.__import__ = real_import
        assert set(sys.modules) == modules
