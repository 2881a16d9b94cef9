"""Threads with MemoryCheckpointer: continuing a thread, get_state, resuming after an error."""

import operator
from collections import Counter
from typing import Annotated, TypedDict

import pytest

from graphflow import END, START, StateGraph
from graphflow.checkpoint import MemoryCheckpointer, StateSnapshot

pytestmark = pytest.mark.timeout(30)


class S(TypedDict, total=False):
    count: Annotated[int, operator.add]
    log: Annotated[list, operator.add]


def counter_graph():
    def inc(state):
        return {"count": 1, "log": ["inc"]}

    g = StateGraph(S)
    g.add_node("inc", inc)
    g.add_edge(START, "inc")
    g.add_edge("inc", END)
    return g.compile(checkpointer=MemoryCheckpointer())


def test_second_invoke_on_same_thread_continues_its_state():
    app = counter_graph()
    first = app.invoke({"log": ["first"]}, thread="t1")
    assert first["count"] == 1
    assert first["log"] == ["first", "inc"]
    second = app.invoke({"log": ["second"]}, thread="t1")
    assert second["count"] == 2
    assert second["log"] == ["first", "inc", "second", "inc"]


def test_threads_are_independent():
    app = counter_graph()
    app.invoke({}, thread="t1")
    app.invoke({}, thread="t1")
    other = app.invoke({"log": ["other"]}, thread="t2")
    assert other["count"] == 1
    assert other["log"] == ["other", "inc"]
    assert app.invoke({}, thread="t1")["count"] == 3


def test_without_thread_nothing_accumulates():
    app = counter_graph()
    app.invoke({})
    assert app.invoke({})["count"] == 1


def test_get_state_returns_snapshot_of_the_thread():
    app = counter_graph()
    out = app.invoke({"log": ["x"]}, thread="t1")
    snap = app.get_state("t1")
    assert isinstance(snap, StateSnapshot)
    assert snap.values == out
    assert list(snap.next) == []
    assert isinstance(snap.step, int)
    assert isinstance(snap.checkpoint_id, str)
    assert snap.checkpoint_id
    assert snap.parent_id is not None
    assert snap.parent_id != snap.checkpoint_id

    app.invoke({"log": ["y"]}, thread="t1")
    snap2 = app.get_state("t1")
    assert snap2.values["count"] == 2
    assert snap2.checkpoint_id != snap.checkpoint_id


def _flaky_chain(calls, ok):
    def make(name):
        def node(state):
            calls[name] += 1
            if name == "b" and not ok["b"]:
                raise RuntimeError("b is not ready")
            return {"log": [name]}

        return node

    g = StateGraph(S)
    for name in ("a", "b", "c"):
        g.add_node(name, make(name))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", END)
    return g.compile(checkpointer=MemoryCheckpointer())


def test_get_state_after_error_shows_failing_node_as_next():
    calls, ok = Counter(), {"b": False}
    app = _flaky_chain(calls, ok)
    with pytest.raises(RuntimeError, match="b is not ready"):
        app.invoke({}, thread="t1")
    snap = app.get_state("t1")
    assert "b" in snap.next
    assert snap.values["log"] == ["a"]


def test_resume_after_error_does_not_rerun_completed_nodes():
    calls, ok = Counter(), {"b": False}
    app = _flaky_chain(calls, ok)
    with pytest.raises(RuntimeError, match="b is not ready"):
        app.invoke({}, thread="t1")
    assert calls == {"a": 1, "b": 1}

    ok["b"] = True
    out = app.invoke(None, thread="t1")
    assert out["log"] == ["a", "b", "c"]
    assert calls == {"a": 1, "b": 2, "c": 1}
    assert list(app.get_state("t1").next) == []


def test_resume_after_error_in_parallel_step_does_not_rerun_finished_sibling():
    calls, ok = Counter(), {"b": False}

    def make(name):
        def node(state):
            calls[name] += 1
            if name == "b" and not ok["b"]:
                raise RuntimeError("b is not ready")
            return {"log": [name]}

        return node

    g = StateGraph(S)
    for name in ("a", "b", "c"):
        g.add_node(name, make(name))
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    g.add_edge("a", "c")
    g.add_edge("b", "c")
    g.add_edge("c", END)
    app = g.compile(checkpointer=MemoryCheckpointer())

    with pytest.raises(RuntimeError, match="b is not ready"):
        app.invoke({}, thread="t1")
    assert "b" in app.get_state("t1").next

    ok["b"] = True
    out = app.invoke(None, thread="t1")
    assert out["log"] == ["a", "b", "c"]
    assert calls == {"a": 1, "b": 2, "c": 1}


def test_failed_thread_then_new_input_is_independent_of_other_threads():
    calls, ok = Counter(), {"b": False}
    app = _flaky_chain(calls, ok)
    with pytest.raises(RuntimeError, match="b is not ready"):
        app.invoke({}, thread="broken")
    ok["b"] = True
    out = app.invoke({}, thread="fresh")
    assert out["log"] == ["a", "b", "c"]
    assert "b" in app.get_state("broken").next
