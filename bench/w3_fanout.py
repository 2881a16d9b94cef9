"""W3 -- map-reduce fan-out with ``Send``.

START -> fanout; a router on ``fanout`` (path_map ["worker"]) returns
``[Send("worker", i) for i in range(n)]``; each worker task returns ``{"results": [i * 2]}``
(``results`` is ``Annotated[list, operator.add]``); worker -> reduce (static edge) -> END.
Reports ms per invoke for n = 1,000 and n = 10,000 and their ratio (linear scaling ~ 10).
"""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from _common import check, median_ns, rnd

from graphflow import END, START, Send, StateGraph

SIZES = (1_000, 10_000)
INVOKES_PER_SAMPLE = 3


class FanState(TypedDict):
    n: int
    results: Annotated[list, operator.add]
    total: int


def fanout(state: FanState) -> None:
    return None


def spread(state: FanState) -> list[Send]:
    return [Send("worker", i) for i in range(state["n"])]


def worker(i: int) -> dict:
    return {"results": [i * 2]}


def reduce_results(state: FanState) -> dict:
    return {"total": len(state["results"])}


def build():
    g = StateGraph(FanState)
    g.add_node("fanout", fanout)
    g.add_node("worker", worker)
    g.add_node("reduce", reduce_results)
    g.add_edge(START, "fanout")
    g.add_conditional_edges("fanout", spread, ["worker"])
    g.add_edge("worker", "reduce")
    g.add_edge("reduce", END)
    return g.compile()


def run_once(n: int, graph=None) -> dict:
    graph = graph if graph is not None else build()
    return graph.invoke({"n": n, "results": []})


def verify(out: dict, n: int) -> None:
    results = out.get("results", [])
    check(
        out.get("total") == n and len(results) == n,
        f"W3 n={n}: total={out.get('total')!r}, len(results)={len(results)}, expected {n}",
    )
    check(results == [i * 2 for i in range(n)], f"W3 n={n}: results not in Send order")


def run(quick: bool) -> dict:
    graph = build()
    ms = {}
    for n in SIZES:
        verify(run_once(n, graph), n)
        # Same sample shape for both sizes (one warm-up, then INVOKES_PER_SAMPLE back-to-back
        # invokes per sample) so that the ratio compares like with like: an auto-calibrated
        # count would run ~10x more 1k invokes per sample than 10k ones, and the garbage
        # collector's share differs between one invoke after gc.collect() and a steady stream.
        ms[n] = (
            median_ns(
                lambda n=n: run_once(n, graph), quick=quick, number=INVOKES_PER_SAMPLE, warmup=1
            )
            / 1e6
        )
    small, big = SIZES
    return {
        "W3_1k_ms": rnd(ms[small]),
        "W3_10k_ms": rnd(ms[big]),
        "W3_linearity": rnd(ms[big] / ms[small]),
    }
