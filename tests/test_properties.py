"""Property-based tests (hypothesis): merge order and reducer algebra."""

import functools
import operator
import time
from typing import Annotated, Literal, TypedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphflow import END, START, Send, StateGraph

pytestmark = pytest.mark.timeout(120)

SETTINGS = settings(max_examples=50, deadline=None)


class LogState(TypedDict, total=False):
    log: Annotated[list, operator.add]
    idx: int
    item: int


node_names = st.from_regex(r"n_[a-z]{1,5}", fullmatch=True)
sleep_ms = st.integers(min_value=0, max_value=3)


def sleeper(name, ms):
    def node(state):
        if ms:
            time.sleep(ms / 1000)
        return {"log": [name]}

    return node


@SETTINGS
@given(st.lists(st.tuples(node_names, sleep_ms), min_size=1, max_size=6,
                unique_by=lambda t: t[0]))
def test_parallel_appends_merge_in_node_name_order(nodes):
    g = StateGraph(LogState)
    for name, ms in nodes:
        g.add_node(name, sleeper(name, ms))
        g.add_edge(START, name)
        g.add_edge(name, END)
    out = g.compile().invoke({})
    assert out["log"] == sorted(name for name, _ in nodes)


@SETTINGS
@given(st.lists(st.tuples(st.integers(-100, 100), sleep_ms), min_size=1, max_size=8))
def test_send_fanout_results_follow_send_order(items):
    def worker(state):
        ms = items[state["idx"]][1]
        if ms:
            time.sleep(ms / 1000)
        return {"log": [state["item"]]}

    def fan(state):
        return [Send("worker", {"idx": i, "item": v}) for i, (v, _) in enumerate(items)]

    g = StateGraph(LogState)
    g.add_node("prep", lambda s: None)
    g.add_node("worker", worker)
    g.add_edge(START, "prep")
    g.add_conditional_edges("prep", fan, ["worker"])
    g.add_edge("worker", END)
    out = g.compile().invoke({})
    assert out["log"] == [v for v, _ in items]


def _poly(a, b):
    return a * 31 + b  # order-sensitive on purpose


REDUCERS = {
    "list_add": (list, operator.add, lambda v: [v]),
    "int_add": (int, operator.add, lambda v: v),
    "int_max": (int, max, lambda v: v),
    "int_poly": (int, _poly, lambda v: v),
    "str_concat": (str, operator.add, str),
}


@SETTINGS
@given(
    kind=st.sampled_from(sorted(REDUCERS)),
    initial=st.none() | st.integers(-50, 50),
    values=st.lists(st.integers(-1000, 1000), min_size=1, max_size=12),
)
def test_writes_over_steps_equal_functools_reduce(kind, initial, values):
    typ, reducer, wrap = REDUCERS[kind]

    class State(TypedDict, total=False):
        acc: Annotated[typ, reducer]
        i: int

    def writer(state):
        i = state["i"]
        return {"acc": wrap(values[i]), "i": i + 1}

    def again(state) -> Literal["writer", "__end__"]:
        return "writer" if state["i"] < len(values) else END

    g = StateGraph(State)
    g.add_node("writer", writer)
    g.add_edge(START, "writer")
    g.add_conditional_edges("writer", again)

    inp = {"i": 0}
    writes = [wrap(v) for v in values]
    if initial is not None:
        inp["acc"] = wrap(initial)
        writes.insert(0, wrap(initial))
    out = g.compile().invoke(inp)
    assert out["acc"] == functools.reduce(reducer, writes, typ())
    assert out["i"] == len(values)
