"""Graphs that Ray workers import by reference (``ray_graphs:fanout`` ...), for
tests/test_distributed.py and bench/w8_ray.py. The cluster's nodes get this folder on
``PYTHONPATH`` and the test database in ``GRAPHFLOW_PG_DSN``.

Nodes note every execution, and every call of their journaled "payment", in a table of the
test database (``ray_effects``), so that tests can count what ran how often across processes.
A task whose argument names a ``hold`` file writes its process id to ``HOLD.pid`` and waits for
``HOLD`` to exist: the test kills that worker meanwhile.
"""

from __future__ import annotations

import asyncio
import operator
import os
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from graphflow import END, START, RunContext, Send, StateGraph, interrupt
from graphflow.checkpoint.postgres import PostgresCheckpointer
from graphflow.distributed import RayExecutor, ray_node

DSN = os.environ.get("GRAPHFLOW_PG_DSN") or "postgresql://postgres@127.0.0.1:5432/postgres"


def _db() -> Any:
    import psycopg

    return psycopg.connect(DSN, autocommit=True)


def create_table() -> None:
    """Make the effects table (once, before the tests: not concurrently from workers)."""
    with _db() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS ray_effects (tag TEXT, what TEXT, pid INT)")


def note(tag: str, what: str) -> None:
    """Record one execution of ``what`` under ``tag`` (a test's own id)."""
    with _db() as conn:
        conn.execute("INSERT INTO ray_effects VALUES (%s, %s, %s)", (tag, what, os.getpid()))


def counts(tag: str) -> dict[str, int]:
    """How often each ``what`` ran under ``tag``."""
    with _db() as conn:
        rows = conn.execute("SELECT what, count(*) FROM ray_effects WHERE tag = %s "
                            "GROUP BY what", (tag,)).fetchall()
    return {what: n for what, n in rows}


def pay(tag: str, what: str) -> str:
    note(tag, "pay:" + what)
    return f"receipt-{what}"


def hold(path: str | None) -> None:
    """Tell the test this process's id, then wait until the test lets go."""
    if not path:
        return
    Path(path + ".pid").write_text(str(os.getpid()))
    while not Path(path).exists():
        time.sleep(0.02)


def spin(n: int) -> int:
    """CPU-bound work: ``n`` rounds of integer arithmetic."""
    x = 0
    for i in range(n):
        x = (x * 31 + i) % 1_000_003
    return x


# -- a fan-out ---------------------------------------------------------------------------------

class Fan(TypedDict):
    tag: str
    n: int
    hold_at: int
    hold: str
    squares: Annotated[list[int], operator.add]
    where: Annotated[list[str], operator.add]
    total: int


def split(state: Fan) -> dict:
    return {"where": [f"split:{os.getpid()}"]}


def spread(state: Fan) -> list[Send]:
    return [Send("square", {"i": i, "tag": state["tag"],
                            "hold": state["hold"] if i == state["hold_at"] else ""})
            for i in range(state["n"])]


def square(arg: dict, ctx: RunContext) -> dict:
    i = arg["i"]
    receipt = ctx.step("pay", pay, arg["tag"], f"square{i}")
    note(arg["tag"], f"square{i}")
    ctx.write({"square": i})
    hold(arg["hold"])
    assert receipt == f"receipt-square{i}"
    return {"squares": [i * i], "where": [f"square:{os.getpid()}"]}


def total(state: Fan) -> dict:
    return {"total": sum(state["squares"]), "where": [f"total:{os.getpid()}"]}


def build_fanout(checkpointer: Any = None, *, square_meta: dict | None = None) -> Any:
    g = StateGraph(Fan)
    g.add_node("split", split, metadata=ray_node(local=True))
    g.add_node("square", square, metadata=square_meta or ray_node(num_cpus=1))
    g.add_node("total", total)
    g.add_edge(START, "split")
    g.add_conditional_edges("split", spread, ["square"])
    g.add_edge("square", "total")
    g.add_edge("total", END)
    return g.compile(checkpointer=checkpointer)


saver = PostgresCheckpointer(DSN, pool_size=2)
fanout = build_fanout(saver)
fanout_plain = build_fanout()


# -- a pipeline (a whole run on a worker) --------------------------------------------------------

class Line(TypedDict):
    tag: str
    hold: str
    log: Annotated[list[str], operator.add]


def first(state: Line) -> dict:
    note(state["tag"], "first")
    return {"log": ["first"]}


def second(state: Line, ctx: RunContext) -> dict:
    receipt = ctx.step("pay", pay, state["tag"], "second")
    note(state["tag"], "second")
    hold(state["hold"])
    return {"log": [f"second:{receipt}"]}


def third(state: Line) -> dict:
    note(state["tag"], "third")
    return {"log": ["third"]}


def build_pipeline(checkpointer: Any = None) -> Any:
    g = StateGraph(Line)
    g.add_sequence([first, second, third])
    g.add_edge(START, "first")
    g.add_edge("third", END)
    return g.compile(checkpointer=checkpointer)


pipeline = build_pipeline(saver)


# -- odds and ends: interrupts, errors, async nodes, custom resources ---------------------------

class Misc(TypedDict):
    x: int
    out: Annotated[list[Any], operator.add]


def ask(state: Misc) -> dict:
    answer = interrupt({"question": f"double {state['x']}?"})
    return {"out": [f"asked:{answer}"]}


async def later(state: Misc) -> dict:
    await asyncio.sleep(0)
    return {"out": [f"async:{os.getpid()}"]}


def fails(state: Misc) -> dict:
    if state["x"] < 0:
        raise ValueError(f"x is negative: {state['x']}")
    return {"out": ["ok"]}


def placed(state: Misc) -> dict:
    import ray

    return {"out": [f"ip:{ray.util.get_node_ip_address()}"]}


def build_misc(checkpointer: Any = None) -> Any:
    g = StateGraph(Misc)
    g.add_node("fails", fails)
    g.add_node("later", later)
    g.add_node("placed", placed, metadata=ray_node(num_cpus=0.5, resources={"special": 1}))
    g.add_node("ask", ask)
    g.add_edge(START, "fails")
    g.add_edge(START, "later")
    g.add_edge(START, "placed")
    g.add_edge(["fails", "later", "placed"], "ask")
    g.add_edge("ask", END)
    return g.compile(checkpointer=checkpointer)


misc = build_misc(saver)


def on_ray(graph: Any, ref: str, **options: Any) -> Any:
    """``graph`` with a RayExecutor that names it by ``ref``."""
    return graph.with_executor(RayExecutor(ref, **options))
