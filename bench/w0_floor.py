"""W0 -- plain-Python floor: W1's 50-step chain as plain function calls on a dict.

Each step calls ``fn(state)`` and merges the returned ``{"count": n + 1}`` into a new dict
(``{**state, **update}``), which is the minimum work any state-graph engine has to do per step.
"""

from __future__ import annotations

from _common import check, median_ns, rnd

STEPS = 50


def inc(state: dict) -> dict:
    return {"count": state["count"] + 1}


FUNCS = [inc] * STEPS


def chain(state: dict) -> dict:
    for fn in FUNCS:
        state = {**state, **fn(state)}
    return state


def run(quick: bool) -> dict:
    check(chain({"count": 0}) == {"count": STEPS}, "W0 chain returned a wrong count")
    ns = median_ns(lambda: chain({"count": 0}), quick=quick)
    return {"W0_us_per_step": rnd(ns / STEPS / 1000)}
