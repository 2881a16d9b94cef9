"""Entities: keyed state with methods, one writer per key (threads and processes), concurrent
queries, persisted by the checkpointer, usable from nodes and tools, writes applied once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import uuid
from dataclasses import field
from pathlib import Path
from typing import TypedDict

import pytest

from graphflow import END, START, RunContext, StateGraph
from graphflow.durable import Entities, entity, query

sys.path.insert(0, str(Path(__file__).parent / "support"))
from waiting import wait_until


@entity
class Account:
    balance: int = 0
    history: list = field(default_factory=list)

    def deposit(self, amount: int) -> int:
        self.balance += amount
        self.history.append(amount)
        return self.balance

    def withdraw(self, amount: int) -> int:
        if amount > self.balance:
            raise ValueError("insufficient funds")
        self.balance -= amount
        return self.balance

    async def adeposit(self, amount: int) -> int:
        await asyncio.sleep(0)
        return self.deposit(amount)

    @query
    def get_balance(self) -> int:
        return self.balance


@pytest.fixture
def key() -> str:
    return f"k-{uuid.uuid4().hex}"


def test_writes_persist_and_queries_read_them(saver, key):
    accounts = Entities(saver)
    assert accounts(Account, key).deposit(50) == 50
    assert accounts(Account, key).deposit(25) == 75
    assert accounts(Account, key).get_balance() == 75
    assert accounts.get(Account, key).history == [50, 25]
    assert accounts.version(Account, key) == 2
    assert accounts(Account, "other-" + key).get_balance() == 0  # keys are apart


def test_a_method_that_raises_stores_nothing(saver, key):
    accounts = Entities(saver)
    accounts(Account, key).deposit(10)
    with pytest.raises(ValueError, match="insufficient"):
        accounts(Account, key).withdraw(99)
    assert accounts.get(Account, key).balance == 10 and accounts.version(Account, key) == 1


def test_concurrent_writers_of_one_key_lose_no_update(saver, key):
    accounts = Entities(saver)
    threads = [threading.Thread(target=lambda: [accounts(Account, key).deposit(1)
                                                for _ in range(10)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert accounts.get(Account, key).balance == 40
    assert accounts.version(Account, key) == 40


def test_a_query_runs_while_a_writer_holds_the_key(saver, key):
    accounts = Entities(saver)
    accounts(Account, key).deposit(5)
    with accounts._writer("Account", key):  # another writer is in the middle of a call
        assert accounts(Account, key).get_balance() == 5  # no lease needed to read
        with pytest.raises(Exception, match="busy"):
            Entities(saver, wait=False)._lease("Account", key).hold(False)


def test_an_operation_id_applies_a_write_once(saver, key):
    accounts = Entities(saver)
    first = accounts.call(Account, key, "deposit", (7,), op_id="op-1")
    again = accounts.call(Account, key, "deposit", (7,), op_id="op-1")  # a retry after a crash
    assert first == again == 7 and accounts.get(Account, key).balance == 7


def test_async_methods(saver, key):
    accounts = Entities(saver)
    assert asyncio.run(accounts(Account, key).adeposit(3)) == 3
    assert accounts(Account, key).get_balance() == 3


def test_nodes_and_tools_use_entities_through_ctx(saver, key):
    from graphflow.tools import tool

    @tool
    def pay(amount: int, ctx: RunContext) -> int:
        """Pay into the account.

        Args:
            amount: how much.
        """
        return ctx.entity(Account, key).deposit(amount)

    class S(TypedDict):
        paid: list

    calls = []

    def node(state: S, ctx: RunContext) -> dict:
        account = ctx.entity(Account, key)
        first = account.deposit(100)
        second = pay.invoke({"amount": 1}, ctx=ctx)
        calls.append(first)
        if len(calls) == 1:
            raise RuntimeError("crash after the writes")  # the node runs again on resume
        return {"paid": [first, second, account.get_balance()]}

    g = StateGraph(S)
    g.add_node("node", node)
    g.add_edge(START, "node")
    g.add_edge("node", END)
    app = g.compile(checkpointer=saver)
    thread = f"t-{uuid.uuid4().hex}"
    with pytest.raises(Exception, match="crash after the writes"):
        app.invoke({"paid": []}, thread=thread)
    assert app.invoke(None, thread=thread) == {"paid": [100, 101, 101]}
    assert Entities(saver).get(Account, key).history == [100, 1]  # each write applied once


def test_entities_need_the_decorator_and_keep_their_fields(saver, key):
    class Plain:
        pass

    with pytest.raises(TypeError, match="not an entity type"):
        Entities(saver)(Plain, key)
    with pytest.raises(TypeError, match="needs a default"):
        @entity
        class NoDefault:
            n: int

    @entity(name="Account")
    class Shrunk:  # a later version of Account without its history field
        balance: int = 0

    Entities(saver)(Account, key).deposit(1)
    with pytest.raises(Exception, match=r"field\(s\) \['history'\]"):
        Entities(saver).get(Shrunk, key)


_WRITER = """
import sys
from graphflow.checkpoint.sqlite import SqliteCheckpointer
from graphflow.checkpoint.postgres import PostgresCheckpointer
from graphflow.durable import Entities
sys.path.insert(0, {tests!r})
from test_entities import Account
kind, where, key = sys.argv[1:4]
saver = SqliteCheckpointer(where) if kind == "sqlite" else PostgresCheckpointer(where)
accounts = Entities(saver)
for _ in range(25):
    accounts(Account, key).deposit(1)
"""


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_writers_in_several_processes_are_serialized(kind, tmp_path, key):
    if kind == "sqlite":
        where = str(tmp_path / "entities.db")
    else:
        from conftest import _make_postgres

        _make_postgres().close()  # skips (or fails on CI) without a server
        where = os.environ.get("GRAPHFLOW_PG_DSN") or "postgresql://postgres@127.0.0.1:5432/postgres"
    code = _WRITER.format(tests=os.path.dirname(__file__))
    procs = [subprocess.Popen([sys.executable, "-c", code, kind, where, key]) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    if kind == "sqlite":
        from graphflow.checkpoint.sqlite import SqliteCheckpointer as Store
    else:
        from graphflow.checkpoint.postgres import PostgresCheckpointer as Store
    with Store(where) as saver:
        assert Entities(saver).get(Account, key).balance == 75
        assert Entities(saver).version(Account, key) == 75


def _worker_graph(saver):
    from graphflow.durable import Worker

    g = StateGraph(TypedDict("Nothing", {"n": int}))
    g.add_node("n", lambda s: {"n": 1})
    g.add_edge(START, "n")
    g.add_edge("n", END)
    return lambda **kw: Worker(g.compile(checkpointer=saver, name="prune"), **kw)


def test_the_worker_prunes_old_operation_results_on_its_schedule(saver, key):
    from graphflow.checkpoint.durable import MISSING

    accounts = Entities(saver)
    accounts.call(Account, key, "deposit", (7,), op_id="op-1")
    worker = _worker_graph(saver)
    worker(keep_entity_ops=3600).run(until=lambda: True)  # one pass: the op is recent
    assert saver.get_entity_op("Account", key, "op-1") == 7
    worker(keep_entity_ops=None).run(until=lambda: True)  # keeps everything
    assert saver.get_entity_op("Account", key, "op-1") == 7

    pruning: list = []

    def pruned() -> bool:  # (a clock may not have moved on since the write: a new worker)
        pruning.append(worker(keep_entity_ops=0))
        pruning[-1].run(until=lambda: True)  # its first pass prunes
        return saver.get_entity_op("Account", key, "op-1") is MISSING

    wait_until(pruned, "the old result pruned")
    assert accounts.get(Account, key).balance == 7  # the state stays
    accounts.call(Account, key, "deposit", (1,), op_id="op-2")
    pruning[-1].run(until=lambda: True)  # its next pruning is an hour away
    assert saver.get_entity_op("Account", key, "op-2") == 8


def test_worker_keep_entity_ops_must_be_seconds(saver):
    with pytest.raises(ValueError, match="keep_entity_ops must be >= 0"):
        _worker_graph(saver)(keep_entity_ops=-1)
