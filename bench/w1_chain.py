"""W1 -- a 50-node linear chain over ``TypedDict {count: int}``.

START -> n0 -> ... -> n49 -> END, each node returns ``{"count": state["count"] + 1}``; compiled
once. Reports the median ``invoke`` time / 50 (µs per node-step), for sync nodes with ``invoke``
and for async nodes with ``ainvoke`` (one event loop running many ainvokes one after another).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from itertools import pairwise
from typing import Any, TypedDict

from _common import amedian_ns, check, median_ns, rnd

from graphflow import END, START, StateGraph

STEPS = 50


class Count(TypedDict):
    count: int


def inc(state: Count) -> dict:
    return {"count": state["count"] + 1}


async def ainc(state: Count) -> dict:
    return {"count": state["count"] + 1}


def build(fn: Callable[..., Any], steps: int = STEPS):
    g = StateGraph(Count)
    names = [f"n{i}" for i in range(steps)]
    for name in names:
        g.add_node(name, fn)
    g.add_edge(START, names[0])
    for src, dst in pairwise(names):
        g.add_edge(src, dst)
    g.add_edge(names[-1], END)
    return g.compile()


def run(quick: bool) -> dict:
    sync_graph = build(inc)
    out = sync_graph.invoke({"count": 0})
    check(out == {"count": STEPS}, f"W1 sync invoke returned {out!r}, expected {{'count': 50}}")
    sync_ns = median_ns(lambda: sync_graph.invoke({"count": 0}), quick=quick)

    async_graph = build(ainc)

    async def main() -> float:
        out = await async_graph.ainvoke({"count": 0})
        check(out == {"count": STEPS}, f"W1 ainvoke returned {out!r}, expected {{'count': 50}}")
        return await amedian_ns(lambda: async_graph.ainvoke({"count": 0}), quick=quick)

    async_ns = asyncio.run(main())
    return {
        "W1_sync_us_per_step": rnd(sync_ns / STEPS / 1000),
        "W1_async_us_per_step": rnd(async_ns / STEPS / 1000),
    }
