"""A graph that is NOT crash-safe on purpose: a node writes the process id into the state, so a
resumed run ends differently from an uninterrupted one."""

import operator
import os
from typing import Annotated, TypedDict

from graphflow import END, START, StateGraph


class State(TypedDict):
    pids: Annotated[list[int], operator.add]


def make(checkpointer):
    g = StateGraph(State)
    g.add_node("one", lambda s: {"pids": [1]})
    g.add_node("two", lambda s: {"pids": [os.getpid()]})
    g.add_edge(START, "one")
    g.add_edge("one", "two")
    g.add_edge("two", END)
    return g.compile(checkpointer=checkpointer)
