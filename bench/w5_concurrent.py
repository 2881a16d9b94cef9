"""W5 -- 200 concurrent ``ainvoke`` calls (asyncio.gather) of a 10-node async chain.

Every node does ``await asyncio.sleep(0.01)`` then increments ``count``; one run is 10 x 10 ms,
so with perfect concurrency 200 runs take ~100 ms wall. Reports total wall ms per gather
(``W5_ms``) and, as the floor to compare with, the same 200 x 10 sleeps as plain coroutines
without graphflow (``W5_floor_ms``; asyncio's own timer overhead makes it > 100).
"""

from __future__ import annotations

import asyncio
from itertools import pairwise
from typing import TypedDict

from _common import amedian_ns, check, rnd

from graphflow import END, START, StateGraph

NODES = 10
CONCURRENCY = 200
SLEEP_S = 0.01


class Count(TypedDict):
    count: int


async def slow_inc(state: Count) -> dict:
    await asyncio.sleep(SLEEP_S)
    return {"count": state["count"] + 1}


def build():
    g = StateGraph(Count)
    names = [f"n{i}" for i in range(NODES)]
    for name in names:
        g.add_node(name, slow_inc)
    g.add_edge(START, names[0])
    for src, dst in pairwise(names):
        g.add_edge(src, dst)
    g.add_edge(names[-1], END)
    return g.compile()


async def _plain_chain() -> dict:
    state = {"count": 0}
    for _ in range(NODES):
        await asyncio.sleep(SLEEP_S)
        state = {**state, "count": state["count"] + 1}
    return state


def run(quick: bool) -> dict:
    graph = build()

    async def gather_all() -> list:
        return await asyncio.gather(*(graph.ainvoke({"count": 0}) for _ in range(CONCURRENCY)))

    async def main() -> tuple[float, float]:
        outs = await gather_all()
        bad = [o for o in outs if o != {"count": NODES}]
        check(not bad, f"W5: {len(bad)} of {len(outs)} runs returned e.g. {bad[:1]!r}")
        graph_ns = await amedian_ns(gather_all, quick=quick, number=1, warmup=1)

        async def gather_plain() -> list:
            return await asyncio.gather(*(_plain_chain() for _ in range(CONCURRENCY)))

        floor_ns = await amedian_ns(gather_plain, quick=quick, number=1, warmup=1)
        return graph_ns, floor_ns

    graph_ns, floor_ns = asyncio.run(main())
    return {"W5_ms": rnd(graph_ns / 1e6), "W5_floor_ms": rnd(floor_ns / 1e6)}
