"""A graph for the crash-recovery proof of graphs invoked from inside a node: two nodes in a row
each invoke a two-node graph whose first node makes a side effect through ``ctx.step``. (In a
row, not in parallel: a kill in one thread may land between another thread's side effect and
its journal entry, which legitimately makes that side effect twice.)"""

import operator
from typing import Annotated, TypedDict

from crash_graph import charge  # the external API that honours idempotency keys

from graphflow import END, START, RunContext, StateGraph


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def make_inner():
    def pay(s: State, ctx: RunContext) -> dict:
        key = ctx.idempotency_key()
        receipt = ctx.step("charge", charge, key)
        assert receipt == f"receipt-{key}", (receipt, key)  # a replayed result is the stored one
        return {"log": ["paid"]}

    inner = StateGraph(State)
    inner.add_node("pay", pay)
    inner.add_node("done", lambda s: {"log": ["done"]})
    inner.add_edge(START, "pay")
    inner.add_edge("pay", "done")
    inner.add_edge("done", END)
    return inner.compile(name="inner")


INNER = make_inner()


def worker(item: str):
    def work(state: State) -> dict:
        out = INNER.invoke({"log": [item]})
        return {"log": ["+".join(out["log"])]}

    return work


def make(checkpointer):
    g = StateGraph(State)
    g.add_node("w0", worker("w0"))
    g.add_node("w1", worker("w1"))
    g.add_node("end", lambda s: {"log": ["end"]})
    g.add_edge(START, "w0")
    g.add_edge("w0", "w1")
    g.add_edge("w1", "end")
    g.add_edge("end", END)
    return g.compile(checkpointer=checkpointer, name="outer")
