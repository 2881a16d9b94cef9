"""Durability as users see it (docs/durability.md, "Engine semantics"), on every checkpointer.

Every test takes the ``saver`` fixture (tests/conftest.py), so it runs against the memory, SQLite
and PostgreSQL backends. Threads get unique names, because the PostgreSQL database is shared.
Calls are counted with dicts/Counters to tell "ran again" from "restored".
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import operator
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal, TypedDict

import pytest
from pydantic import BaseModel

from graphflow import (
    END,
    START,
    Command,
    GraphflowError,
    GraphValidationError,
    Interrupt,
    InvalidUpdateError,
    RetryPolicy,
    Send,
    StateGraph,
    interrupt,
)
from graphflow.checkpoint import StateSnapshot

pytestmark = pytest.mark.timeout(30)

INTERRUPT = "__interrupt__"


# -- states and helpers ------------------------------------------------------------------------


class Log(TypedDict, total=False):
    log: Annotated[list, operator.add]
    answer: Any
    a_ans: Any
    b_ans: Any
    flag: bool
    v: Any


class Counted(BaseModel):
    count: Annotated[int, operator.add] = 0


class CountedPlus(BaseModel):
    count: Annotated[int, operator.add] = 0
    added: str = "fresh"


@dataclasses.dataclass
class CountedDC:
    count: Annotated[int, operator.add] = 0


@dataclasses.dataclass
class CountedDCPlus:
    count: Annotated[int, operator.add] = 0
    added: str = "fresh"


class WithLegacy(TypedDict, total=False):
    keep: str
    legacy_field: str


class WithoutLegacy(TypedDict, total=False):
    keep: str


@pytest.fixture
def thread(saver):
    """A thread name of this test's own; its threads (and namespaces) are deleted afterwards."""
    name = f"t-{uuid.uuid4().hex}"
    yield name
    try:  # best effort: keep a shared PostgreSQL database from filling up
        for t in saver.threads():
            if t.startswith(name):
                saver.delete_thread(t)
    except Exception:
        pass


def appender(name: str, calls: Counter):
    def node(state):
        calls[name] += 1
        return {"log": [name]}

    node.__name__ = name
    return node


def linear(saver, calls: Counter, names=("a", "b", "c"), **compile_kw):
    """START -> a -> b -> c -> END; each node appends its name to ``log``."""
    g = StateGraph(Log)
    for n in names:
        g.add_node(n, appender(n, calls))
    g.add_edge(START, names[0])
    for x, y in itertools.pairwise(names):
        g.add_edge(x, y)
    g.add_edge(names[-1], END)
    return g.compile(checkpointer=saver, **compile_kw)


def single(saver, fn, name="ask", **compile_kw):
    """START -> fn -> END."""
    g = StateGraph(Log)
    g.add_node(name, fn)
    g.add_edge(START, name)
    g.add_edge(name, END)
    return g.compile(checkpointer=saver, **compile_kw)


def lineage(app, thread, checkpoint_id):
    """The checkpoint ids from ``checkpoint_id`` back to the first one, via parent_id."""
    ids = []
    cid = checkpoint_id
    while cid is not None:
        ids.append(cid)
        cid = app.get_state(thread, checkpoint=cid).parent_id
        assert len(ids) < 100, "parent_id chain does not end"
    return ids


# -- threads, get_state, history ---------------------------------------------------------------


def test_invoke_on_a_thread_continues_its_state(saver, thread):
    calls = Counter()
    app = linear(saver, calls, names=("a",))
    assert app.invoke({"log": ["first"]}, thread=thread) == {"log": ["first", "a"]}
    second = app.invoke({"log": ["second"]}, thread=thread)
    assert second == {"log": ["first", "a", "second", "a"]}
    other = app.invoke({"log": ["other"]}, thread=thread + "-other")
    assert other == {"log": ["other", "a"]}
    assert app.get_state(thread).values == second


def test_get_state_fields(saver, thread):
    app = linear(saver, Counter())
    out = app.invoke({"log": ["in"]}, thread=thread)
    snap = app.get_state(thread)
    assert isinstance(snap, StateSnapshot)
    assert snap.values == out == {"log": ["in", "a", "b", "c"]}
    assert INTERRUPT not in snap.values
    assert snap.next == ()
    assert snap.interrupts == ()
    assert snap.step == 3  # steps: 0 after the input, then one per superstep (a, b, c)
    assert isinstance(snap.checkpoint_id, str) and snap.checkpoint_id
    assert isinstance(snap.created_at, datetime)
    assert snap.created_at.utcoffset() == timedelta(0)  # UTC
    assert snap.metadata["source"] == "loop"
    assert snap.metadata["step"] == 3

    history = app.get_state_history(thread)
    assert [h.step for h in history] == [3, 2, 1, 0, -1]
    assert history[0].checkpoint_id == snap.checkpoint_id
    assert snap.parent_id == history[1].checkpoint_id
    assert history[1].values == {"log": ["in", "a", "b"]}
    assert history[1].next == ("c",)
    after_input = history[-2]
    assert after_input.metadata["source"] == "loop"
    assert after_input.values == {"log": ["in"]}
    assert after_input.next == ("a",)
    first = history[-1]  # the input checkpoint: the state before the input, START due
    assert first.metadata["source"] == "input"
    assert first.parent_id is None
    assert first.values == {"log": []}
    assert first.next == ("__start__",)


def test_get_state_at_a_given_checkpoint(saver, thread):
    app = linear(saver, Counter())
    app.invoke({}, thread=thread)
    after_a = app.get_state_history(thread)[2]
    snap = app.get_state(thread, checkpoint=after_a.checkpoint_id)
    assert snap.checkpoint_id == after_a.checkpoint_id
    assert snap.values == {"log": ["a"]}
    assert snap.next == ("b",)
    assert snap.step == 1


def test_checkpoints_of_successive_runs_form_one_linked_lineage(saver, thread):
    app = linear(saver, Counter(), names=("a",))
    app.invoke({}, thread=thread)
    app.invoke({}, thread=thread)
    history = app.get_state_history(thread)
    assert len(history) == 6  # (input, after the input, after a) twice
    assert [h.metadata["source"] for h in history] == ["loop", "loop", "input"] * 2
    for newer, older in itertools.pairwise(history):
        assert newer.parent_id == older.checkpoint_id
    assert history[-1].parent_id is None
    assert len({h.checkpoint_id for h in history}) == 6


def test_get_state_of_unknown_thread_is_none(saver, thread):
    app = linear(saver, Counter())
    assert app.get_state(thread) is None
    assert app.get_state_history(thread) == []


def test_history_is_newest_first_and_honours_limit(saver, thread):
    app = linear(saver, Counter())
    app.invoke({}, thread=thread)
    full = app.get_state_history(thread)
    assert len(full) == 5
    assert [len(h.values["log"]) for h in full] == [3, 2, 1, 0, 0]
    two = app.get_state_history(thread, limit=2)
    assert [h.checkpoint_id for h in two] == [h.checkpoint_id for h in full[:2]]
    assert [h.values for h in two] == [h.values for h in full[:2]]


def test_list_threads_and_delete_thread(saver, thread):
    calls = Counter()
    app = linear(saver, calls, names=("a",))
    t1, t2 = thread + "-1", thread + "-2"
    app.invoke({"log": ["one"]}, thread=t1)
    app.invoke({"log": ["two"]}, thread=t2)
    threads = app.list_threads()
    assert t1 in threads and t2 in threads
    assert threads == sorted(threads)

    app.delete_thread(t1)
    assert t1 not in app.list_threads()
    assert t2 in app.list_threads()
    assert app.get_state(t1) is None
    assert app.get_state_history(t1) == []
    assert app.get_state(t2).values == {"log": ["two", "a"]}
    # the name can be used again, from scratch
    assert app.invoke({"log": ["again"]}, thread=t1) == {"log": ["again", "a"]}


def test_delete_thread_forgets_the_step_journal(saver, thread):
    calls = Counter()

    def fetch():
        calls["fetch"] += 1
        return f"data-{calls['fetch']}"

    def node(state, ctx):
        return {"answer": ctx.step("fetch", fetch)}

    app = single(saver, node)
    assert app.invoke({}, thread=thread)["answer"] == "data-1"
    app.delete_thread(thread)
    assert app.invoke({}, thread=thread)["answer"] == "data-2"
    assert calls["fetch"] == 2


# -- resuming after an error -------------------------------------------------------------------


def test_resume_after_error_reruns_only_the_failed_parallel_node(saver, thread):
    calls = Counter()
    broken = {"b": True}

    def a(state):
        calls["a"] += 1
        return {"log": ["a"]}

    def b(state):
        calls["b"] += 1
        if broken["b"]:
            raise RuntimeError("b is down")
        return {"log": ["b"]}

    def c(state):
        calls["c"] += 1
        return {"log": ["c"]}

    g = StateGraph(Log)
    g.add_node("a", a).add_node("b", b).add_node("c", c)
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    g.add_edge(["a", "b"], "c")
    g.add_edge("c", END)
    app = g.compile(checkpointer=saver)

    with pytest.raises(RuntimeError) as excinfo:
        app.invoke({}, thread=thread)
    assert excinfo.value.graphflow_node == "b"
    assert excinfo.value.graphflow_thread == thread
    assert calls == {"a": 1, "b": 1}
    assert sorted(app.get_state(thread).next) == ["a", "b"]

    broken["b"] = False
    out = app.invoke(None, thread=thread)
    assert calls == {"a": 1, "b": 2, "c": 1}  # a's outcome was kept, not run again
    assert out == {"log": ["a", "b", "c"]}
    assert app.get_state(thread).next == ()


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_lone_node_whose_router_fails_is_not_rerun_on_resume(saver, thread, driver):
    """A step's lone task has its outcome stored with the step's checkpoint, in one commit;
    when the step fails after the task (here its router), the outcome is stored on its own,
    so resuming does not run the finished node again."""
    calls = Counter()
    broken = {"on": True}

    def work(state):
        calls["work"] += 1
        return {"log": ["worked"]}

    def route(state) -> Literal["__end__"]:
        if broken["on"]:
            raise RuntimeError("router bug")
        return END

    g = StateGraph(Log)
    g.add_node("work", work)
    g.add_edge(START, "work")
    g.add_conditional_edges("work", route)
    app = g.compile(checkpointer=saver)

    def run(inp):
        if driver == "sync":
            return app.invoke(inp, thread=thread)
        return asyncio.run(app.ainvoke(inp, thread=thread))

    with pytest.raises(RuntimeError, match="router bug"):
        run({"log": []})
    broken["on"] = False
    assert run(None)["log"] == ["worked"]
    assert calls["work"] == 1


def test_invoke_none_on_unknown_thread_is_an_error(saver, thread):
    app = linear(saver, Counter())
    with pytest.raises(GraphflowError):
        app.invoke(None, thread=thread)


# -- interrupt() and Command(resume=...) -------------------------------------------------------


def test_interrupt_pauses_and_resume_value_is_returned_by_interrupt(saver, thread):
    calls = Counter()

    def ask(state):
        calls["ask"] += 1
        return {"answer": interrupt({"question": "name?"})}

    def after(state):
        calls["after"] += 1
        return {"log": [f"hello {state['answer']}"]}

    g = StateGraph(Log)
    g.add_node("ask", ask).add_node("after", after)
    g.add_edge(START, "ask").add_edge("ask", "after").add_edge("after", END)
    app = g.compile(checkpointer=saver)

    paused = app.invoke({}, thread=thread)
    assert INTERRUPT in paused
    (intr,) = paused[INTERRUPT]
    assert isinstance(intr, Interrupt)
    assert intr.value == {"question": "name?"}
    assert intr.node == "ask"
    assert calls == {"ask": 1}

    snap = app.get_state(thread)
    assert snap.next == ("ask",)
    assert INTERRUPT not in snap.values
    (pending,) = snap.interrupts
    assert pending.id == intr.id
    assert pending.value == {"question": "name?"}
    assert pending.node == "ask"

    out = app.invoke(Command(resume="Bob"), thread=thread)
    assert INTERRUPT not in out
    assert out["answer"] == "Bob"
    assert out["log"] == ["hello Bob"]
    assert calls == {"ask": 2, "after": 1}
    snap = app.get_state(thread)
    assert snap.next == ()
    assert snap.interrupts == ()


def test_two_interrupts_in_one_node_resume_in_order(saver, thread):
    def ask(state):
        first = interrupt("q1")
        second = interrupt("q2")
        return {"answer": [first, second]}

    app = single(saver, ask)
    paused = app.invoke({}, thread=thread)
    assert [i.value for i in paused[INTERRUPT]] == ["q1"]

    paused = app.invoke(Command(resume="A"), thread=thread)
    assert [i.value for i in paused[INTERRUPT]] == ["q2"]
    assert [i.value for i in app.get_state(thread).interrupts] == ["q2"]

    out = app.invoke(Command(resume="B"), thread=thread)
    assert out["answer"] == ["A", "B"]
    assert INTERRUPT not in out


def test_ctx_step_before_interrupt_runs_once_across_resumes(saver, thread):
    calls = Counter()

    def add(x, *, y):
        calls["step"] += 1
        return x + y + calls["step"] * 100  # differs per call: a re-call would show

    def ask(state, ctx):
        calls["body"] += 1  # NOT in ctx.step: runs again each time the node is resumed
        total = ctx.step("add", add, 1, y=2)
        first = interrupt("q1")
        second = interrupt("q2")
        return {"answer": [total, first, second]}

    app = single(saver, ask)
    app.invoke({}, thread=thread)
    app.invoke(Command(resume="A"), thread=thread)
    out = app.invoke(Command(resume="B"), thread=thread)
    assert out["answer"] == [103, "A", "B"]
    assert calls["step"] == 1
    assert calls["body"] == 3  # the node body itself re-runs from the start on every resume


def test_parallel_interrupts_need_a_dict_of_ids(saver, thread):
    def a(state):
        return {"a_ans": interrupt("for a")}

    def b(state):
        return {"b_ans": interrupt("for b")}

    g = StateGraph(Log)
    g.add_node("a", a).add_node("b", b)
    g.add_edge(START, "a").add_edge(START, "b")
    g.add_edge("a", END).add_edge("b", END)
    app = g.compile(checkpointer=saver)

    paused = app.invoke({}, thread=thread)
    by_node = {i.node: i for i in paused[INTERRUPT]}
    assert sorted(by_node) == ["a", "b"]
    assert by_node["a"].value == "for a" and by_node["b"].value == "for b"
    assert by_node["a"].id != by_node["b"].id
    assert {i.id for i in app.get_state(thread).interrupts} == {i.id for i in by_node.values()}

    with pytest.raises(GraphflowError) as excinfo:
        app.invoke(Command(resume="same for both"), thread=thread)
    assert by_node["a"].id in str(excinfo.value)
    assert by_node["b"].id in str(excinfo.value)

    out = app.invoke(Command(resume={by_node["a"].id: "x", by_node["b"].id: "y"}),
                     thread=thread)
    assert out["a_ans"] == "x"
    assert out["b_ans"] == "y"
    assert INTERRUPT not in out
    assert app.get_state(thread).interrupts == ()


def test_resume_with_nothing_pending_is_an_error(saver, thread):
    app = linear(saver, Counter(), names=("a",))
    with pytest.raises(GraphflowError):  # no thread at all
        app.invoke(Command(resume="x"), thread=thread)
    app.invoke({}, thread=thread)
    with pytest.raises(GraphflowError):  # finished thread, no interrupt pending
        app.invoke(Command(resume="x"), thread=thread)
    assert app.get_state(thread).values == {"log": ["a"]}


def test_stream_updates_yields_the_interrupt(saver, thread):
    def ask(state):
        return {"answer": interrupt("q?")}

    app = single(saver, ask)
    events = list(app.stream({}, mode="updates", thread=thread))
    pauses = [e for e in events if INTERRUPT in e]
    assert len(pauses) == 1
    (intr,) = pauses[0][INTERRUPT]
    assert intr.value == "q?"
    assert intr.node == "ask"

    events = list(app.stream(Command(resume="yes"), mode="updates", thread=thread))
    assert {"ask": {"answer": "yes"}} in events
    assert not any(INTERRUPT in e for e in events)


def test_interrupt_inside_send_tasks_resumes_each_send_with_its_own_value(saver, thread):
    calls = Counter()

    def plan(state):
        return None

    def fan_out(state):
        return [Send("work", {"item": x}) for x in ("p", "q")]

    def work(arg):
        calls[arg["item"]] += 1
        answer = interrupt(f"approve {arg['item']}?")
        return {"log": [f"{arg['item']}={answer}"]}

    g = StateGraph(Log)
    g.add_node("plan", plan).add_node("work", work)
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", fan_out, ["work"])
    g.add_edge("work", END)
    app = g.compile(checkpointer=saver)

    paused = app.invoke({}, thread=thread)
    intrs = paused[INTERRUPT]
    assert sorted(i.value for i in intrs) == ["approve p?", "approve q?"]
    assert all(i.node == "work" for i in intrs)
    assert len({i.id for i in intrs}) == 2

    answers = {i.id: i.value.split()[1].rstrip("?").upper() for i in intrs}
    out = app.invoke(Command(resume=answers), thread=thread)
    assert sorted(out["log"]) == ["p=P", "q=Q"]
    assert calls == {"p": 2, "q": 2}
    assert app.get_state(thread).next == ()


class Sub(TypedDict, total=False):
    log: Annotated[list, operator.add]
    answer: Any


def _child_graph(calls: Counter, *, asks: bool, **compile_kw):
    def prep(state):
        calls["prep"] += 1
        return {"log": ["prep"]}

    def ask(state):
        calls["ask"] += 1
        if not asks:
            return {"log": ["work"]}
        answer = interrupt("sub?")
        return {"log": [f"ask:{answer}"], "answer": answer}

    child = StateGraph(Sub)
    child.add_node("prep", prep).add_node("ask", ask)
    child.add_edge(START, "prep").add_edge("prep", "ask").add_edge("ask", END)
    return child.compile(name="child", **compile_kw)


def test_interrupt_inside_subgraph_resumes_through_the_parent(saver, thread):
    calls = Counter()
    g = StateGraph(Log)
    g.add_node("before", appender("before", calls))
    g.add_node("sub", _child_graph(calls, asks=True))
    g.add_node("after", appender("after", calls))
    g.add_edge(START, "before").add_edge("before", "sub")
    g.add_edge("sub", "after").add_edge("after", END)
    app = g.compile(checkpointer=saver)

    paused = app.invoke({}, thread=thread)
    assert [i.value for i in paused[INTERRUPT]] == ["sub?"]
    snap = app.get_state(thread)
    assert snap.next == ("sub",)
    assert [i.value for i in snap.interrupts] == ["sub?"]
    assert snap.values["log"] == ["before"]

    out = app.invoke(Command(resume="yes"), thread=thread)
    assert INTERRUPT not in out
    assert out["log"] == ["before", "prep", "ask:yes", "after"]  # subgraph's appends once
    assert out["answer"] == "yes"
    assert calls == {"before": 1, "prep": 1, "ask": 2, "after": 1}


def test_finished_subgraph_beside_an_interrupt_is_not_rerun(saver, thread):
    calls = Counter()

    def gate(state):
        calls["gate"] += 1
        return {"answer": interrupt("go?")}

    g = StateGraph(Log)
    g.add_node("sub", _child_graph(calls, asks=False))
    g.add_node("gate", gate)
    g.add_edge(START, "sub").add_edge(START, "gate")
    g.add_edge("sub", END).add_edge("gate", END)
    app = g.compile(checkpointer=saver)

    paused = app.invoke({}, thread=thread)
    assert [i.value for i in paused[INTERRUPT]] == ["go?"]
    out = app.invoke(Command(resume="go"), thread=thread)
    assert out["answer"] == "go"
    assert out["log"] == ["prep", "work"]
    assert calls == {"prep": 1, "ask": 1, "gate": 2}


# -- static breakpoints ------------------------------------------------------------------------


def test_breakpoints_of_a_graph_used_as_subgraph_do_not_apply(saver, thread):
    calls = Counter()
    g = StateGraph(Log)
    g.add_node("sub", _child_graph(calls, asks=False, interrupt_before=["ask"],
                                   interrupt_after=["prep"]))
    g.add_edge(START, "sub").add_edge("sub", END)
    app = g.compile(checkpointer=saver)
    out = app.invoke({}, thread=thread)
    assert out == {"log": ["prep", "work"]}
    assert calls == {"prep": 1, "ask": 1}
    assert app.get_state(thread).next == ()


def test_interrupt_before_stops_before_the_node_and_continues(saver, thread):
    calls = Counter()
    app = linear(saver, calls, interrupt_before=["b"])
    app.invoke({}, thread=thread)
    assert calls == {"a": 1}
    snap = app.get_state(thread)
    assert snap.next == ("b",)
    assert snap.values == {"log": ["a"]}

    out = app.invoke(None, thread=thread)
    assert out == {"log": ["a", "b", "c"]}
    assert calls == {"a": 1, "b": 1, "c": 1}
    assert app.get_state(thread).next == ()


def test_interrupt_after_stops_after_the_node_and_continues(saver, thread):
    calls = Counter()
    app = linear(saver, calls, interrupt_after=["a"])
    app.invoke({}, thread=thread)
    assert calls == {"a": 1}
    snap = app.get_state(thread)
    assert snap.next == ("b",)
    assert snap.values == {"log": ["a"]}

    out = app.invoke(None, thread=thread)
    assert out == {"log": ["a", "b", "c"]}
    assert calls == {"a": 1, "b": 1, "c": 1}


def test_interrupt_before_stops_each_time_the_node_is_due(saver, thread):
    calls = Counter()

    def again(state) -> Literal["b", "__end__"]:
        return "b" if state["log"].count("b") < 2 else END

    g = StateGraph(Log)
    g.add_node("a", appender("a", calls)).add_node("b", appender("b", calls))
    g.add_edge(START, "a").add_edge("a", "b")
    g.add_conditional_edges("b", again)
    app = g.compile(checkpointer=saver, interrupt_before=["b"])

    app.invoke({}, thread=thread)
    assert app.get_state(thread).next == ("b",)
    assert calls["b"] == 0
    app.invoke(None, thread=thread)  # runs b once, then pauses before its second run
    assert calls["b"] == 1
    assert app.get_state(thread).next == ("b",)
    out = app.invoke(None, thread=thread)
    assert calls["b"] == 2
    assert out == {"log": ["a", "b", "b"]}
    assert app.get_state(thread).next == ()


@pytest.mark.parametrize("where", ["interrupt_before", "interrupt_after"])
def test_breakpoint_on_unknown_node_is_rejected_at_compile(saver, where):
    g = StateGraph(Log)
    g.add_node("a", appender("a", Counter()))
    g.add_edge(START, "a").add_edge("a", END)
    with pytest.raises(GraphValidationError):
        g.compile(checkpointer=saver, **{where: ["nope"]})


# -- update_state ------------------------------------------------------------------------------


def test_update_state_as_node_follows_its_edges_and_applies_reducers(saver, thread):
    calls = Counter()
    app = linear(saver, calls)
    app.invoke({}, thread=thread)
    head = app.get_state(thread)

    new_id = app.update_state(thread, {"log": ["patched"]}, as_node="a")
    snap = app.get_state(thread)
    assert snap.checkpoint_id == new_id
    assert snap.parent_id == head.checkpoint_id
    assert snap.values == {"log": ["a", "b", "c", "patched"]}  # operator.add applied
    assert snap.next == ("b",)
    assert snap.metadata["source"] == "update"

    out = app.invoke(None, thread=thread)
    assert out == {"log": ["a", "b", "c", "patched", "b", "c"]}
    assert calls == {"a": 1, "b": 2, "c": 2}


def test_update_state_as_node_consults_its_router(saver, thread):
    calls = Counter()

    def route(state) -> Literal["x", "y"]:
        return "x" if state.get("flag") else "y"

    g = StateGraph(Log)
    for n in ("a", "x", "y"):
        g.add_node(n, appender(n, calls))
    g.add_edge(START, "a")
    g.add_conditional_edges("a", route)
    g.add_edge("x", END).add_edge("y", END)
    app = g.compile(checkpointer=saver)

    assert app.invoke({}, thread=thread) == {"log": ["a", "y"]}
    app.update_state(thread, {"flag": True}, as_node="a")
    assert app.get_state(thread).next == ("x",)
    assert app.invoke(None, thread=thread)["log"] == ["a", "y", "x"]


def test_update_state_without_as_node_keeps_next(saver, thread):
    calls = Counter()
    broken = {"b": True}

    def b(state):
        calls["b"] += 1
        if broken["b"]:
            raise RuntimeError("down")
        return {"log": ["b"]}

    g = StateGraph(Log)
    g.add_node("a", appender("a", calls)).add_node("b", b)
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", END)
    app = g.compile(checkpointer=saver)
    with pytest.raises(RuntimeError, match="down"):
        app.invoke({}, thread=thread)
    assert app.get_state(thread).next == ("b",)

    app.update_state(thread, {"log": ["fix"]})
    snap = app.get_state(thread)
    assert snap.next == ("b",)
    assert snap.values == {"log": ["a", "fix"]}
    assert snap.metadata["source"] == "update"

    broken["b"] = False
    assert app.invoke(None, thread=thread) == {"log": ["a", "fix", "b"]}
    assert calls == {"a": 1, "b": 2}


def test_update_state_at_a_breakpoint_then_continue_runs_the_due_node(saver, thread):
    calls = Counter()
    app = linear(saver, calls, interrupt_before=["b"])
    app.invoke({}, thread=thread)
    app.update_state(thread, {"log": ["edited"]})
    assert app.get_state(thread).next == ("b",)
    out = app.invoke(None, thread=thread)
    assert out == {"log": ["a", "edited", "b", "c"]}
    assert calls == {"a": 1, "b": 1, "c": 1}


def test_update_state_rejects_unknown_key_and_unknown_node(saver, thread):
    app = linear(saver, Counter())
    app.invoke({}, thread=thread)
    head = app.get_state(thread).checkpoint_id
    with pytest.raises(InvalidUpdateError):
        app.update_state(thread, {"no_such_key": 1})
    with pytest.raises(InvalidUpdateError):
        app.update_state(thread, {"log": ["x"]}, as_node="no_such_node")
    assert app.get_state(thread).checkpoint_id == head
    assert app.get_state(thread).values == {"log": ["a", "b", "c"]}


# -- forks and replays -------------------------------------------------------------------------


def test_update_state_with_checkpoint_forks_a_new_head(saver, thread):
    calls = Counter()
    app = linear(saver, calls)
    app.invoke({}, thread=thread)
    history = app.get_state_history(thread)
    old_head = history[0]
    after_a = history[2]
    assert after_a.values == {"log": ["a"]}

    fork_id = app.update_state(thread, {"log": ["fork"]}, checkpoint=after_a.checkpoint_id)
    head = app.get_state(thread)
    assert head.checkpoint_id == fork_id
    assert head.parent_id == after_a.checkpoint_id
    assert head.metadata["source"] == "fork"
    assert head.values == {"log": ["a", "fork"]}
    assert head.next == ("b",)

    new_history = app.get_state_history(thread)
    assert new_history[0].checkpoint_id == fork_id
    ids = [h.checkpoint_id for h in new_history]
    assert set(ids) == {h.checkpoint_id for h in history} | {fork_id}
    kept = app.get_state(thread, checkpoint=old_head.checkpoint_id)
    assert kept.values == {"log": ["a", "b", "c"]}
    assert kept.next == ()

    out = app.invoke(None, thread=thread)  # continues the fork
    assert out == {"log": ["a", "fork", "b", "c"]}
    assert calls == {"a": 1, "b": 2, "c": 2}
    assert app.get_state(thread, checkpoint=old_head.checkpoint_id).values == kept.values


def test_invoke_from_an_old_checkpoint_replays_as_a_new_branch(saver, thread):
    calls = Counter()
    app = linear(saver, calls)
    app.invoke({}, thread=thread)
    history = app.get_state_history(thread)
    old_head = history[0]
    after_a = history[2]
    assert after_a.next == ("b",)

    out = app.invoke(None, thread=thread, checkpoint=after_a.checkpoint_id)
    assert out == {"log": ["a", "b", "c"]}
    assert calls == {"a": 1, "b": 2, "c": 2}  # the nodes after the checkpoint ran again

    head = app.get_state(thread)
    assert head.checkpoint_id != old_head.checkpoint_id
    assert after_a.checkpoint_id in lineage(app, thread, head.checkpoint_id)
    assert old_head.checkpoint_id not in lineage(app, thread, head.checkpoint_id)
    new_ids = {h.checkpoint_id for h in app.get_state_history(thread)}
    assert {h.checkpoint_id for h in history} <= new_ids  # the old history is intact
    assert len(new_ids) > len(history)
    for old in history:
        assert app.get_state(thread, checkpoint=old.checkpoint_id).values == old.values


# -- ctx.step journal --------------------------------------------------------------------------


def test_ctx_step_is_not_recalled_when_a_retry_reruns_the_node(saver, thread):
    calls = Counter()

    def fetch():
        calls["fetch"] += 1
        return f"data-{calls['fetch']}"

    def flaky(state, ctx):
        calls["attempt"] += 1
        data = ctx.step("fetch", fetch)
        if calls["attempt"] == 1:
            raise ConnectionError("a later line fails once")
        return {"answer": data}

    g = StateGraph(Log)
    g.add_node("flaky", flaky,
               retry=RetryPolicy(max_attempts=3, initial_interval=0.0, jitter=False))
    g.add_edge(START, "flaky").add_edge("flaky", END)
    app = g.compile(checkpointer=saver)

    out = app.invoke({}, thread=thread)
    assert out["answer"] == "data-1"
    assert calls == {"fetch": 1, "attempt": 2}


def test_ctx_step_result_survives_an_error_and_resume(saver, thread):
    calls = Counter()
    broken = {"on": True}

    def fetch():
        calls["fetch"] += 1
        return f"data-{calls['fetch']}"

    def node(state, ctx):
        data = ctx.step("fetch", fetch)
        if broken["on"]:
            raise RuntimeError("crash after the step")
        return {"answer": data}

    app = single(saver, node)
    with pytest.raises(RuntimeError, match="crash after the step"):
        app.invoke({}, thread=thread)
    broken["on"] = False
    assert app.invoke(None, thread=thread)["answer"] == "data-1"
    assert calls["fetch"] == 1


def test_ctx_step_order_mismatch_is_an_error_naming_the_node(saver, thread):
    flipped = {"on": False}

    def ordered_steps(state, ctx):
        names = ["first", "second"]
        if flipped["on"]:
            names.reverse()
        for name in names:
            ctx.step(name, lambda name=name: name)
        return {"answer": interrupt("q")}

    app = single(saver, ordered_steps, name="ordered_steps")
    app.invoke({}, thread=thread)
    flipped["on"] = True
    with pytest.raises(GraphflowError) as excinfo:
        app.invoke(Command(resume="x"), thread=thread)
    assert "ordered_steps" in str(excinfo.value)


def test_a_step_that_calls_a_model_then_fails_keeps_the_journal_in_order(saver, thread):
    """A model call made inside a step is journaled inside the step's slot: when the step's
    function fails after that call, the node re-runs it with the answer replayed (the model is
    not asked twice), and the node's later steps find their own slots."""
    from graphflow.models import ScriptedModel

    model = ScriptedModel(["plan A", "summary"])
    calls = Counter()

    def plan():
        answer = model.invoke("make a plan").content
        calls["plan"] += 1
        if calls["plan"] == 1:
            raise ConnectionError("fails after the model answered")
        return answer

    def node(state, ctx):
        first = ctx.step("plan", plan)
        second = ctx.step("summarize", lambda: model.invoke("summarize").content)
        return {"answer": f"{first} / {second} / {interrupt('ok?')}"}

    g = StateGraph(Log)
    g.add_node("node", node,
               retry=RetryPolicy(max_attempts=2, initial_interval=0.0, jitter=False))
    g.add_edge(START, "node").add_edge("node", END)
    app = g.compile(checkpointer=saver)

    app.invoke({}, thread=thread)  # plan fails once, is retried, then the node pauses
    assert app.invoke(Command(resume="yes"), thread=thread)["answer"] == "plan A / summary / yes"
    assert len(model.calls) == 2 and calls["plan"] == 2


def test_a_step_that_pauses_after_a_model_call_does_not_pay_it_twice(saver, thread):
    from graphflow.models import ScriptedModel

    model = ScriptedModel(["draft"])

    def review():
        draft = model.invoke("write").content
        return f"{draft}+{interrupt({'review': draft})}"

    def node(state, ctx):
        return {"answer": ctx.step("review", review)}

    app = single(saver, node)
    app.invoke({}, thread=thread)
    (pending,) = app.get_state(thread).interrupts
    assert pending.value == {"review": "draft"}
    assert app.invoke(Command(resume="ok"), thread=thread)["answer"] == "draft+ok"
    assert len(model.calls) == 1


# -- async -------------------------------------------------------------------------------------


def test_interrupt_and_resume_through_ainvoke(saver, thread):
    calls = Counter()

    async def ask(state):
        calls["ask"] += 1
        await asyncio.sleep(0)
        return {"answer": interrupt("async q")}

    app = single(saver, ask)

    async def main():
        paused = await app.ainvoke({}, thread=thread)
        assert [i.value for i in paused[INTERRUPT]] == ["async q"]
        assert [i.node for i in app.get_state(thread).interrupts] == ["ask"]
        return await app.ainvoke(Command(resume="async a"), thread=thread)

    out = asyncio.run(main())
    assert out["answer"] == "async a"
    assert INTERRUPT not in out
    assert calls["ask"] == 2


def test_async_ctx_step_runs_once_across_a_resume(saver, thread):
    calls = Counter()

    async def fetch(x):
        calls["fetch"] += 1
        await asyncio.sleep(0)
        return x * 10 + calls["fetch"]

    async def node(state, ctx):
        value = await ctx.step("x", fetch, 4)
        answer = interrupt("ok?")
        return {"answer": [value, answer]}

    app = single(saver, node)

    async def main():
        await app.ainvoke({}, thread=thread)
        return await app.ainvoke(Command(resume="yes"), thread=thread)

    assert asyncio.run(main())["answer"] == [41, "yes"]
    assert calls["fetch"] == 1


# -- serialization round trips -----------------------------------------------------------------

ROUND_TRIP_VALUES = {
    "tuple": (1, "a", None),
    "nested": {"items": [(1, 2), ("x", (3.5, True))], "pair": ("k", [1])},
    "aware_datetime": datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
    "offset_datetime": datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2))),
    "naive_datetime": datetime(2024, 5, 6, 7, 8, 9),
    "date": date(2024, 2, 29),
    "timedelta": timedelta(days=1, seconds=5, microseconds=7),
    "set": {1, 2, 3},
    "frozenset": frozenset({"a", "b"}),
    "bytes": b"\x00\xffbinary",
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "decimal": Decimal("1.10"),
    "int_keys": {1: "one", 2: (2, 2)},
    "gf_key_dict": {"__gf__": "tuple", "v": [1, 2]},
}


@pytest.mark.parametrize("value", list(ROUND_TRIP_VALUES.values()), ids=list(ROUND_TRIP_VALUES))
def test_state_values_round_trip_through_the_store(saver, thread, value):
    seen = []

    def look(state):
        seen.append(state.get("v"))
        return {"log": ["look"]}

    app = single(saver, look, name="look")
    app.invoke({"v": value}, thread=thread)
    snap = app.get_state(thread)
    assert snap.values["v"] == value
    assert type(snap.values["v"]) is type(value)
    app.invoke({}, thread=thread)  # the node now gets the value back from the store
    assert seen[-1] == value
    assert type(seen[-1]) is type(value)
    assert repr(seen[-1]) == repr(value)


def test_journal_and_resume_values_round_trip(saver, thread):
    seen = []
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)

    def node(state, ctx):
        made = ctx.step("make", lambda: (1, when))
        seen.append(made)
        answer = interrupt(("question", when))
        return {"answer": [made, answer]}

    app = single(saver, node)
    paused = app.invoke({}, thread=thread)
    assert paused[INTERRUPT][0].value == ("question", when)
    assert app.get_state(thread).interrupts[0].value == ("question", when)
    out = app.invoke(Command(resume=("yes", date(2024, 1, 3))), thread=thread)
    assert seen == [(1, when), (1, when)]
    assert all(type(s) is tuple for s in seen)
    assert out["answer"] == [(1, when), ("yes", date(2024, 1, 3))]
    assert type(out["answer"][1]) is tuple


def test_send_arguments_round_trip_through_a_resume(saver, thread):
    seen = []

    def fan_out(state):
        return [Send("work", ("item", 1, date(2024, 1, 1)))]

    def work(arg):
        seen.append(arg)
        return {"answer": interrupt("ok?")}

    g = StateGraph(Log)
    g.add_node("plan", lambda s: None).add_node("work", work)
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", fan_out, ["work"])
    g.add_edge("work", END)
    app = g.compile(checkpointer=saver)
    app.invoke({}, thread=thread)
    app.invoke(Command(resume="ok"), thread=thread)
    assert seen == [("item", 1, date(2024, 1, 1))] * 2
    assert type(seen[1]) is tuple


# -- schema changes between runs ---------------------------------------------------------------


def test_stored_key_missing_from_new_schema_is_an_error_naming_it(saver, thread):
    def old_node(state):
        return {"legacy_field": "precious"}

    old = StateGraph(WithLegacy)
    old.add_node("old_node", old_node)
    old.add_edge(START, "old_node").add_edge("old_node", END)
    old_app = old.compile(checkpointer=saver)
    old_app.invoke({"keep": "k"}, thread=thread)

    def new_node(state):
        return {"keep": "k2"}

    new = StateGraph(WithoutLegacy)
    new.add_node("new_node", new_node)
    new.add_edge(START, "new_node").add_edge("new_node", END)
    new_app = new.compile(checkpointer=saver)

    with pytest.raises(GraphflowError, match="legacy_field"):
        new_app.get_state(thread)
    with pytest.raises(GraphflowError, match="legacy_field"):
        new_app.invoke({"keep": "again"}, thread=thread)
    # nothing was lost: the old graph still reads the thread as it was
    assert old_app.get_state(thread).values == {"keep": "k", "legacy_field": "precious"}


@pytest.mark.parametrize(("old_schema", "new_schema"), [(Counted, CountedPlus),
                                                         (CountedDC, CountedDCPlus)],
                         ids=["pydantic", "dataclass"])
def test_key_added_to_schema_starts_from_its_default(saver, thread, old_schema, new_schema):
    def make(schema):
        def inc(state):
            return {"count": 1}

        g = StateGraph(schema)
        g.add_node("inc", inc)
        g.add_edge(START, "inc").add_edge("inc", END)
        return g.compile(checkpointer=saver)

    make(old_schema).invoke({}, thread=thread)
    new_app = make(new_schema)
    snap = new_app.get_state(thread)
    assert isinstance(snap.values, new_schema)
    assert snap.values.count == 1
    assert snap.values.added == "fresh"
    out = new_app.invoke({}, thread=thread)
    assert out.count == 2
    assert out.added == "fresh"
