"""W4 -- the W2 loop (each step appending one ~200-byte message) with a checkpointer that
commits every step's writes before the next step starts.

Reports, for SQLite (and PostgreSQL when reachable): µs per step at 1,000 steps (the headline)
and at 250 and 10,000 steps, and their flatness (µs/step at 10,000 over µs/step at 1,000: 1.0
means a step costs the same however long the thread); stored bytes after 250, 1,000 and 10,000
steps and the growth exponent fitted over them (1.0 = linear; LangGraph's SqliteSaver: 1.95);
the time of ``get_state`` at the 1,000-step checkpoint; and the cost of one journaled
``ctx.step`` call.
"""

from __future__ import annotations

import math
import operator
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Annotated, TypedDict

from _common import check, log, rnd

from graphflow import END, START, RunContext, StateGraph

MESSAGE = "x" * 200
SIZES = (250, 1_000, 10_000)
HEADLINE = 1_000


class Chat(TypedDict):
    messages: Annotated[list, operator.add]


def build(saver):
    g = StateGraph(Chat)
    g.add_node("a", lambda s: {"messages": [MESSAGE]})
    g.add_node("b", lambda s: {"messages": [MESSAGE]})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_conditional_edges(
        "b", lambda s: END if len(s["messages"]) >= TARGET[0] else "a", ["a", END])
    return g.compile(checkpointer=saver)


TARGET = [0]


def journal_graph(saver, calls: int):
    g = StateGraph(Chat)

    def node(s: Chat, ctx: RunContext) -> dict:
        for i in range(calls):
            ctx.step(f"s{i}", int, i)
        return {"messages": ["done"]}

    g.add_node("n", node)
    g.add_edge(START, "n")
    g.add_edge("n", END)
    return g.compile(checkpointer=saver)


def _fit(xs: list[int], ys: list[int]) -> float:
    lx = [math.log(x) for x in xs]
    ly = [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum(
        (a - mx) ** 2 for a in lx)


def _sqlite_bytes(path: Path) -> int:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def _measure(make_saver, bytes_of, label: str, quick: bool) -> dict:
    out: dict = {}
    sizes = SIZES if not quick else (250, 1_000)
    stored = []
    per_step: dict[int, float] = {}
    for n in sizes:
        saver, handle = make_saver()
        app = build(saver)
        TARGET[0] = n
        thread = f"w4-{uuid.uuid4().hex[:8]}"
        t0 = time.perf_counter_ns()
        final = app.invoke({"messages": []}, thread=thread, recursion_limit=n + 10)
        elapsed = time.perf_counter_ns() - t0
        check(len(final["messages"]) == n, f"W4 {label}: {len(final['messages'])} messages")
        stored.append(bytes_of(handle, thread))
        per_step[n] = elapsed / n / 1e3
        if n == HEADLINE:
            times = []
            for _ in range(21 if not quick else 5):
                t0 = time.perf_counter_ns()
                state = app.get_state(thread)
                times.append(time.perf_counter_ns() - t0)
            check(len(state.values["messages"]) == n, "W4: get_state lost messages")
            out[f"W4_{label}_get_state_ms"] = rnd(sorted(times)[len(times) // 2] / 1e6)
            calls = 200
            plain, journaled = journal_graph(saver, 0), journal_graph(saver, calls)
            t0 = time.perf_counter_ns()
            plain.invoke({"messages": []}, thread=f"j0-{uuid.uuid4().hex[:8]}")
            t1 = time.perf_counter_ns()
            journaled.invoke({"messages": []}, thread=f"j1-{uuid.uuid4().hex[:8]}")
            t2 = time.perf_counter_ns()
            out[f"W4_{label}_journal_us_per_step_call"] = rnd(((t2 - t1) - (t1 - t0)) / calls / 1e3)
        close = getattr(saver, "close", None)
        if close:
            close()
    out[f"W4_{label}_us_per_step"] = rnd(per_step[HEADLINE])
    out[f"W4_{label}_us_per_step_by_steps"] = {str(n): rnd(v) for n, v in per_step.items()}
    if max(sizes) > HEADLINE:
        out[f"W4_{label}_flatness"] = rnd(per_step[max(sizes)] / per_step[HEADLINE])
    out[f"W4_{label}_bytes"] = dict(zip(map(str, sizes), stored, strict=True))
    out[f"W4_{label}_growth_exponent"] = rnd(_fit(list(sizes), stored))
    return out


def run(quick: bool) -> dict:
    from graphflow.checkpoint.sqlite import SqliteCheckpointer

    tmp = Path(tempfile.mkdtemp(prefix="graphflow-w4-"))

    def sqlite_saver():
        path = tmp / f"runs-{uuid.uuid4().hex[:8]}.db"
        return SqliteCheckpointer(path), path

    out = _measure(sqlite_saver, lambda path, _t: _sqlite_bytes(path), "sqlite", quick)
    from graphflow.testing.postgres import configured_dsn, ensure_database

    dsn = configured_dsn()  # GRAPHFLOW_PG_DSN, else a graphflow_test database, made if missing
    try:
        import psycopg

        ensure_database(dsn)
    except Exception as exc:
        log(f"W4 postgres skipped: {exc}")
        out["W4_postgres"] = f"skipped: {type(exc).__name__}"
        return out
    from graphflow.checkpoint.postgres import PostgresCheckpointer

    def pg_saver():
        saver = PostgresCheckpointer(dsn)
        return saver, saver

    def pg_bytes(saver, thread: str) -> int:
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM graphflow_checkpoints t "
                "WHERE thread = %s", (thread,)).fetchone()
            rows = conn.execute(
                "SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM graphflow_writes t "
                "WHERE thread = %s", (thread,)).fetchone()
        return int(row[0]) + int(rows[0])

    out.update(_measure(pg_saver, pg_bytes, "postgres", quick))
    return out
