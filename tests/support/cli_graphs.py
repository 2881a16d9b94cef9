"""Small graphs for the command-line tests (``tests/test_cli.py``), loaded as ``cli_graphs:NAME``.

- ``app``: two nodes in a row (``greet`` then ``shout``), a compiled graph.
- ``builder``: the same, as an uncompiled ``StateGraph``; ``make_app``: a factory returning it.
- ``approval``: ``draft`` -> ``review`` (asks ``interrupt(...)``) -> ``publish``.
- ``two_questions``: two parallel nodes that each ask an interrupt.
- ``guarded``: ``app`` with a static breakpoint before ``shout``.
- ``broken``: ``greet`` then ``explode``, which raises.
- ``chatty``: a node that writes custom stream events.
- ``counter``: ``tick`` loops until ``n`` reaches 3; its state has required keys (``n``,
  ``notes``), and each step changes little of it (stored as deltas).
- ``not_a_graph``: a plain value.
"""

from __future__ import annotations

import operator
from typing import Annotated, Literal, TypedDict

from graphflow import END, START, RunContext, StateGraph, interrupt


class State(TypedDict, total=False):
    name: str
    greeting: str
    log: Annotated[list[str], operator.add]


def greet(state: State) -> dict:
    return {"greeting": f"hello {state['name']}", "log": ["greet"]}


def shout(state: State) -> dict:
    return {"greeting": state["greeting"].upper() + "!", "log": ["shout"]}


def _two_steps() -> StateGraph:
    g = StateGraph(State)
    g.add_node("greet", greet)
    g.add_node("shout", shout)
    g.add_edge(START, "greet")
    g.add_edge("greet", "shout")
    g.add_edge("shout", END)
    return g


builder = _two_steps()
app = builder.compile(name="app")
guarded = _two_steps().compile(name="guarded", interrupt_before=["shout"])


def make_app():
    return _two_steps()


# -- interrupts ------------------------------------------------------------------------------------


def draft(state: State) -> dict:
    return {"greeting": f"dear {state['name']}", "log": ["draft"]}


def review(state: State) -> dict:
    answer = interrupt({"question": "publish this?", "text": state["greeting"]})
    return {"log": [f"review:{answer}"]}


def publish(state: State) -> dict:
    return {"log": ["publish"]}


def _approval() -> StateGraph:
    g = StateGraph(State)
    g.add_sequence([draft, review, publish])
    g.add_edge(START, "draft")
    g.add_edge("publish", END)
    return g


approval = _approval().compile(name="approval")


def ask_a(state: State) -> dict:
    return {"log": [f"a:{interrupt('first?')}"]}


def ask_b(state: State) -> dict:
    return {"log": [f"b:{interrupt('second?')}"]}


def _two_questions() -> StateGraph:
    g = StateGraph(State)
    g.add_node("ask_a", ask_a)
    g.add_node("ask_b", ask_b)
    g.add_edge(START, "ask_a")
    g.add_edge(START, "ask_b")
    g.add_edge(["ask_a", "ask_b"], END)
    return g


two_questions = _two_questions().compile(name="two_questions")


# -- errors and custom events ----------------------------------------------------------------------


def explode(state: State) -> dict:
    raise ValueError("kaboom: the node failed\non two lines")


def _broken() -> StateGraph:
    g = StateGraph(State)
    g.add_sequence([greet, explode])
    g.add_edge(START, "greet")
    g.add_edge("explode", END)
    return g


broken = _broken().compile(name="broken")


def chat(state: State, ctx: RunContext) -> dict:
    for i in range(3):
        ctx.write({"progress": i})
    return {"log": ["chat"]}


def _chatty() -> StateGraph:
    g = StateGraph(State)
    g.add_node("chat", chat)
    g.add_edge(START, "chat")
    g.add_edge("chat", END)
    return g


chatty = _chatty().compile(name="chatty")



# -- a loop over a state with required keys --------------------------------------------------------


class Count(TypedDict):
    n: int
    notes: str
    seen: Annotated[list[int], operator.add]


def tick(state: Count) -> dict:
    return {"n": state["n"] + 1, "seen": [state["n"]]}


def again(state: Count) -> Literal["tick", "__end__"]:
    return "tick" if state["n"] < 3 else END


def _counter() -> StateGraph:
    g = StateGraph(Count)
    g.add_node("tick", tick)
    g.add_edge(START, "tick")
    g.add_conditional_edges("tick", again)
    return g


counter = _counter().compile(name="counter")

not_a_graph = 42
