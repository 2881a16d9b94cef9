"""The 5-node graph S1 serves (``graphflow serve chain5=_serve_graph:chain5`` from bench/)."""

from __future__ import annotations

from typing import TypedDict

from graphflow import END, START, StateGraph


class Count(TypedDict):
    n: int


def _inc(state: Count) -> dict:
    return {"n": state["n"] + 1}


_g = StateGraph(Count)
for _i in range(5):
    _g.add_node(f"n{_i}", _inc)
_g.add_edge(START, "n0")
for _i in range(4):
    _g.add_edge(f"n{_i}", f"n{_i + 1}")
_g.add_edge("n4", END)
chain5 = _g.compile(name="chain5")
