"""A graph for the crash-recovery proof of ``Command(graph=Command.PARENT)``: a subgraph node
whose inner node hands over to a node of the parent."""

import operator
from typing import Annotated, TypedDict

from graphflow import END, START, Command, StateGraph


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def make_inner():
    inner = StateGraph(State)
    inner.add_node("work", lambda s: {"log": ["work"]})
    inner.add_node("handover", lambda s: Command(graph=Command.PARENT, goto="after",
                                                 update={"log": ["handed"]}))
    inner.add_node("never", lambda s: {"log": ["never"]})
    inner.add_edge(START, "work")
    inner.add_edge("work", "handover")
    inner.add_edge("handover", "never")
    inner.add_edge("never", END)
    return inner.compile(name="inner")


def make(checkpointer):
    g = StateGraph(State)
    g.add_node("first", lambda s: {"log": ["first"]})
    g.add_node("inner", make_inner(), destinations=["after"])
    g.add_node("after", lambda s: {"log": [f"after({len(s['log'])})"]})
    g.add_edge(START, "first")
    g.add_edge("first", "inner")
    g.add_edge("after", END)
    return g.compile(checkpointer=checkpointer, name="outer")
