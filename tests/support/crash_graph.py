"""A graph for the crash-recovery proof: parallel branches, Send fan-out, a join, a subgraph and a
loop, with a side effect (an "external charge") made through ctx.step, by an API that
deduplicates by idempotency key (as payment APIs do)."""

import operator
import os
import sqlite3
from typing import Annotated, Literal, TypedDict

from graphflow import END, START, RunContext, Send, StateGraph


class State(TypedDict):
    items: Annotated[list[str], operator.add]
    rounds: int


def charge(key: str) -> str:
    """The external API: every call is logged in ``calls``; a charge is applied once per
    idempotency key (``charges``), however often it is called with that key."""
    with sqlite3.connect(os.environ["CRASH_EFFECTS_DB"]) as db:
        db.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT)")
        db.execute("CREATE TABLE IF NOT EXISTS charges (key TEXT PRIMARY KEY)")
        db.execute("INSERT INTO calls VALUES (?)", (key,))
        db.execute("INSERT OR IGNORE INTO charges VALUES (?)", (key,))
    return f"receipt-{key}"


def plan(state: State) -> dict:
    return {"items": ["plan"]}


def a(state: State) -> dict:
    return {"items": ["a"]}


def b(state: State) -> dict:
    return {"items": ["b"]}


def work(i: int) -> dict:
    return {"items": [f"work{i}"]}


def fan_out(state: State) -> list[Send]:
    return [Send("work", i) for i in range(3)]


def merge(state: State, ctx: RunContext) -> dict:
    key = ctx.idempotency_key()
    receipt = ctx.step("charge", charge, key)
    assert receipt == f"receipt-{key}", (receipt, key)  # a replayed result is the stored one
    return {"items": [f"merge:{ctx.superstep}"], "rounds": state["rounds"] + 1}


def again(state: State) -> Literal["merge", "__end__"]:
    return "merge" if state["rounds"] < 2 else END


def make_subgraph():
    sub = StateGraph(State)
    sub.add_node("s1", lambda s: {"items": ["s1"]})
    sub.add_node("s2", lambda s: {"items": ["s2"]})
    sub.add_edge(START, "s1")
    sub.add_edge("s1", "s2")
    sub.add_edge("s2", END)
    return sub.compile(name="sub")


def make(checkpointer):
    g = StateGraph(State)
    g.add_node("plan", plan)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_node("work", work)
    g.add_node("merge", merge)
    g.add_node("sub", make_subgraph())
    g.add_edge(START, "plan")
    g.add_edge("plan", "a")
    g.add_edge("plan", "b")
    g.add_conditional_edges("plan", fan_out, ["work"])
    g.add_edge(["a", "b", "work"], "merge")
    g.add_edge("merge", "sub")
    g.add_conditional_edges("sub", again)
    return g.compile(checkpointer=checkpointer, name="crashy")
