"""SQLite under many processes: writers that open one new file at the same moment, and writers
that run on one file at the same moment, all wait their turn and succeed ("database is locked"
is never an answer while the busy timeout lasts).

Before: about one open in a hundred failed at once with "database is locked" when eight
processes opened a new file together (switching a file to WAL mode does not wait on SQLite's
busy timeout)."""

from __future__ import annotations

import multiprocessing as mp
import operator
from pathlib import Path
from typing import Annotated, TypedDict

PROCESSES = 8
ROUNDS = 60


class State(TypedDict):
    items: Annotated[list, operator.add]


def _opener(barrier, root: str, rounds: int, results) -> None:
    from graphflow.checkpoint.sqlite import SqliteCheckpointer

    failed = []
    for r in range(rounds):
        barrier.wait()  # everyone opens the same new file at once
        try:
            with SqliteCheckpointer(Path(root) / f"{r}.db") as saver:
                saver.threads()
        except Exception as exc:
            failed.append(f"{type(exc).__name__}: {exc}")
    results.put(failed)


def _writer(barrier, db: str, rounds: int, tag: str, results) -> None:
    from graphflow import END, START, StateGraph
    from graphflow.checkpoint.sqlite import SqliteCheckpointer

    g = StateGraph(State)
    g.add_node("a", lambda s: {"items": ["a"]})
    g.add_node("b", lambda s: {"items": ["b"]})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    failed = []
    with SqliteCheckpointer(db) as saver:
        app = g.compile(checkpointer=saver)
        for r in range(rounds):
            barrier.wait()  # everyone writes at once
            try:
                assert app.invoke({"items": []}, thread=f"{tag}-{r}")["items"] == ["a", "b"]
            except Exception as exc:
                failed.append(f"{type(exc).__name__}: {exc}")
    results.put(failed)


def _together(target, args_of) -> list[str]:
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=target, args=(barrier, *args_of(i), results))
             for i in range(PROCESSES)]
    for p in procs:
        p.start()
    failed = [f for _ in procs for f in results.get(timeout=600)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    return failed


def test_processes_opening_one_new_file_together_all_succeed(tmp_path):
    assert _together(_opener, lambda i: (str(tmp_path), ROUNDS)) == []


def test_processes_writing_one_file_together_all_succeed(tmp_path):
    db = tmp_path / "shared.db"
    assert _together(_writer, lambda i: (str(db), ROUNDS, f"p{i}")) == []
    from graphflow.checkpoint.sqlite import SqliteCheckpointer

    with SqliteCheckpointer(db) as saver:
        assert len(saver.threads()) == PROCESSES * ROUNDS
