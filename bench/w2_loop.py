"""W2 -- a two-node loop a -> b -> (router: back to a, or END) running 1,000 steps in total.

State ``{"items": Annotated[list, operator.add]}``; each node appends one item; the router after
``b`` ends the run once 1,000 items exist (500 a/b rounds = 1,000 supersteps). µs per step.
"""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from _common import check, median_ns, rnd

from graphflow import END, START, StateGraph

TOTAL_STEPS = 1_000


class Items(TypedDict):
    items: Annotated[list, operator.add]


def a(state: Items) -> dict:
    return {"items": ["a"]}


def b(state: Items) -> dict:
    return {"items": ["b"]}


def route(state: Items) -> str:
    return END if len(state["items"]) >= TOTAL_STEPS else "a"


def build():
    g = StateGraph(Items)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_conditional_edges("b", route, ["a", END])
    return g.compile()


def run(quick: bool) -> dict:
    graph = build()
    limit = TOTAL_STEPS + 100

    def once() -> dict:
        return graph.invoke({"items": []}, recursion_limit=limit)

    out = once()
    items = out["items"]
    check(
        len(items) == TOTAL_STEPS and items[:2] == ["a", "b"] and items[-1] == "b",
        f"W2 returned {len(items)} items (first {items[:4]!r}), expected 1000 alternating a/b",
    )
    ns = median_ns(once, quick=quick)
    return {"W2_us_per_step": rnd(ns / TOTAL_STEPS / 1000)}
