"""Failures that can be resumed after a fix, on every checkpointer: a task whose writes were
rejected is not a finished task, so after the fix ``invoke(None, thread=...)`` runs that task
again (and only that task); a thread paused at a node a new deployment removed says so."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, TypedDict

import pytest

from graphflow import (
    END,
    START,
    GraphflowError,
    InvalidUpdateError,
    RunContext,
    Send,
    StateGraph,
)


class State(TypedDict):
    count: int
    items: Annotated[list, operator.add]


def strict_add(old: list, new: list) -> list:
    if any(not isinstance(x, str) for x in new):
        raise TypeError("items must be str")
    return old + new


class Strict(TypedDict):
    count: int
    items: Annotated[list, strict_add]


class OneWriter(TypedDict):
    count: int
    items: Annotated[list, operator.add]


class Summed(TypedDict):
    count: Annotated[int, operator.add]
    items: Annotated[list, operator.add]


def _thread() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


class Counted:
    """Nodes that count their runs; ``bad`` decides whether a node writes a bad value."""

    def __init__(self) -> None:
        self.runs: dict[str, int] = {}
        self.bad = True
        self.paid: list[str] = []

    def node(self, name: str, *, write):
        def run(state, ctx: RunContext) -> dict:
            self.runs[name] = self.runs.get(name, 0) + 1
            ctx.step("pay", lambda: self.paid.append(name) or name)
            return write(self)
        return run


def test_a_rejected_write_of_a_lone_task_runs_again_after_the_fix(saver):
    c = Counted()
    g = StateGraph(State)
    g.add_node("first", c.node("first", write=lambda c: {"items": ["first"]}))
    g.add_node("second", c.node(
        "second", write=lambda c: {"count": "three" if c.bad else 3, "items": ["second"]}))
    g.add_edge(START, "first")
    g.add_edge("first", "second")
    g.add_edge("second", END)
    app = g.compile(checkpointer=saver)
    thread = _thread()
    with pytest.raises(InvalidUpdateError, match="'second' wrote key 'count'"):
        app.invoke({"count": 0, "items": []}, thread=thread)
    with pytest.raises(InvalidUpdateError):  # unfixed, resuming fails the same way: no replay
        app.invoke(None, thread=thread)
    assert c.runs == {"first": 1, "second": 2}
    c.bad = False  # the fix
    out = app.invoke(None, thread=thread)
    assert out == {"count": 3, "items": ["first", "second"]}
    assert c.runs == {"first": 1, "second": 3}  # only the failed task ran again
    assert c.paid == ["first", "second"]  # and its journaled effect was not paid again


def test_a_failing_reducer_in_a_parallel_step_reruns_only_that_task(saver):
    c = Counted()
    g = StateGraph(Strict)
    g.add_node("start", lambda s: {})
    g.add_node("good", c.node("good", write=lambda c: {"items": ["good"]}))
    g.add_node("bad", c.node("bad", write=lambda c: {"items": [1] if c.bad else ["fixed"]}))
    g.add_edge(START, "start")
    g.add_edge("start", "good")
    g.add_edge("start", "bad")
    g.add_edge(["good", "bad"], END)
    app = g.compile(checkpointer=saver)
    thread = _thread()
    with pytest.raises(InvalidUpdateError, match=r"reducer 'strict_add'.*'bad'"):
        app.invoke({"count": 0, "items": []}, thread=thread)
    c.bad = False
    out = app.invoke(None, thread=thread)
    assert out["items"] == ["fixed", "good"]  # merge order: by node name
    assert c.runs == {"good": 1, "bad": 2}


def test_two_writes_to_a_key_without_reducer_rerun_the_second_after_the_fix(saver):
    c = Counted()

    def build(schema):
        g = StateGraph(schema)
        g.add_node("fan", lambda s: {})
        g.add_node("work", c.node("work", write=lambda c: {"count": 1}))
        g.add_edge(START, "fan")
        g.add_conditional_edges("fan", lambda s: [Send("work", i) for i in (1, 2)], ["work"])
        g.add_edge("work", END)
        return g.compile(checkpointer=saver)

    thread = _thread()
    with pytest.raises(InvalidUpdateError, match="written by 'work' and 'work'"):
        build(OneWriter).invoke({"count": 0, "items": []}, thread=thread)
    fixed = build(Summed)  # the fix: a reducer for the key
    assert fixed.invoke(None, thread=thread)["count"] == 2
    assert c.runs == {"work": 3}  # the second Send task ran again; the first was restored


def test_a_thread_due_at_a_removed_node_says_which_and_what_to_do(saver):
    g = StateGraph(State)
    g.add_node("a", lambda s: {"items": ["a"]})
    g.add_node("b", lambda s: {"items": ["b"]})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    app = g.compile(checkpointer=saver, interrupt_before=["b"])
    thread = _thread()
    app.invoke({"count": 0, "items": []}, thread=thread)
    assert app.get_state(thread).next == ("b",)
    g2 = StateGraph(State)  # the new deployment: "b" is gone
    g2.add_node("a", lambda s: {"items": ["a"]})
    g2.add_edge(START, "a")
    g2.add_edge("a", END)
    new = g2.compile(checkpointer=saver)
    with pytest.raises(GraphflowError, match=r"node\(s\) \['b'\].*no longer has.*update_state"):
        new.invoke(None, thread=thread)
    new.update_state(thread, {"items": ["moved on"]}, as_node="a")
    assert new.get_state(thread).values["items"] == ["a", "moved on"]
