"""Graphs the HTTP server tests serve (``graphflow serve serve_graphs:NAME`` from this folder).

Gates are files, because the server is another process: ``GATES/<thread>.<node>.started`` is
written when a gated node starts, and the node waits for ``GATES/<thread>.go`` (the test
creates it). Every node appends its name to ``GATES/<thread>.ran``, so a test can tell which
nodes ran, and how often, across server restarts.
"""

from __future__ import annotations

import itertools
import operator
import os
import time
from pathlib import Path
from typing import Annotated, TypedDict

from graphflow import END, START, RunContext, StateGraph, interrupt


class Count(TypedDict):
    n: int
    log: Annotated[list[str], operator.add]


def _gates() -> Path:
    return Path(os.environ["GRAPHFLOW_TEST_GATES"])


def _ran(thread: str | None, name: str) -> None:
    if thread is not None and "GRAPHFLOW_TEST_GATES" in os.environ:
        with open(_gates() / f"{thread}.ran", "a") as f:
            f.write(name + "\n")


def _step(name: str):
    def node(state: Count, ctx: RunContext) -> dict:
        _ran(ctx.thread, name)
        return {"n": state["n"] + 1, "log": [name]}

    node.__name__ = name
    return node


def _gate(name: str):
    def node(state: Count, ctx: RunContext) -> dict:
        _ran(ctx.thread, name)
        gates = _gates()
        (gates / f"{ctx.thread}.{name}.started").touch()
        go = gates / f"{ctx.thread}.go"
        deadline = time.monotonic() + 120
        while not go.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{go} never appeared")
            time.sleep(0.01)
        return {"n": state["n"] + 1, "log": [name]}

    node.__name__ = name
    return node


def _chain(names: list[str], gate: str | None = None):
    g = StateGraph(Count)
    for name in names:
        g.add_node(name, _gate(name) if name == gate else _step(name))
    g.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        g.add_edge(a, b)
    g.add_edge(names[-1], END)
    return g.compile()


#: five quick nodes: the benchmark's and most tests' graph
chain = _chain(["n1", "n2", "n3", "n4", "n5"])

#: "first" -> "gate" (waits for the test's go file) -> "after" -> "last"
gated = _chain(["first", "gate", "after", "last"], gate="gate")


def _ask(state: Count, ctx: RunContext) -> dict:
    answer = interrupt({"question": "how many?", "n": state["n"]})
    return {"n": state["n"] + int(answer), "log": [f"asked: {answer}"]}


_g = StateGraph(Count)
_g.add_node("before", _step("before"))
_g.add_node("ask", _ask)
_g.add_node("done", _step("done"))
_g.add_edge(START, "before")
_g.add_edge("before", "ask")
_g.add_edge("ask", "done")
_g.add_edge("done", END)

#: "before" -> "ask" (an interrupt: answer with a number) -> "done"
ask = _g.compile()
