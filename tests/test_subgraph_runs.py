"""Subgraph runs: ``stream(subgraphs=True)`` (every subgraph's events, each with the path of the
run it came from) and graphs invoked from inside a node, which run as subgraphs of that node's
task (checkpointed, resumed, journaled, counted, interruptible). Written against the docstrings
of ``CompiledGraph.stream`` and ``CompiledGraph.invoke``."""

import asyncio
import itertools
import operator
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Annotated, TypedDict

import pytest

from graphflow import (
    END,
    START,
    Command,
    InvalidUpdateError,
    RunContext,
    Send,
    StateGraph,
    TokenBudgetExceeded,
    interrupt,
)
from graphflow.checkpoint import MemoryCheckpointer
from graphflow.models import ScriptedModel
from graphflow.testing import crash_test

SUPPORT = str(Path(__file__).parent / "support")


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def logger(name):
    return lambda s: {"log": [name]}


def chain(*names, name="sub", fns=None):
    """START -> names[0] -> ... -> END; each node logs its name (or runs fns[name])."""
    fns = fns or {}
    g = StateGraph(State)
    for n in names:
        g.add_node(n, fns.get(n) or logger(n))
    g.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        g.add_edge(a, b)
    g.add_edge(names[-1], END)
    return g.compile(name=name)


def with_subgraph(sub, *, checkpointer=None, after=True):
    g = StateGraph(State)
    g.add_node(sub.name, sub)
    g.add_edge(START, sub.name)
    if after:
        g.add_node("after", lambda s: {"log": ["after"]})
        g.add_edge(sub.name, "after")
        g.add_edge("after", END)
    else:
        g.add_edge(sub.name, END)
    return g.compile(checkpointer=checkpointer, name="top")


# -- stream(subgraphs=True) ---------------------------------------------------------------------

def test_updates_from_inside_a_subgraph_carry_its_path():
    app = with_subgraph(chain("s1", "s2"))
    assert list(app.stream({"log": []}, subgraphs=True)) == [
        (("sub",), {"s1": {"log": ["s1"]}}),
        (("sub",), {"s2": {"log": ["s2"]}}),
        ((), {"sub": {"log": ["s1", "s2"]}}),
        ((), {"after": {"log": ["after"]}}),
    ]


def test_without_subgraphs_the_stream_is_unchanged():
    app = with_subgraph(chain("s1", "s2"))
    assert list(app.stream({"log": []})) == [{"sub": {"log": ["s1", "s2"]}},
                                             {"after": {"log": ["after"]}}]


def test_nested_levels_and_a_list_of_modes():
    mid = StateGraph(State).add_node("leaf", chain("l1", name="leaf"))
    mid.add_edge(START, "leaf").add_edge("leaf", END)
    app = with_subgraph(mid.compile(name="mid"), after=False)
    events = list(app.stream({"log": []}, mode=["updates", "values"], subgraphs=True))
    assert (("mid", "leaf"), "updates", {"l1": {"log": ["l1"]}}) in events
    assert (("mid", "leaf"), "values", {"log": ["l1"]}) in events
    assert (("mid",), "updates", {"leaf": {"log": ["l1"]}}) in events
    assert events[-1] == ((), "values", {"log": ["l1"]})
    # every event is (path, mode, payload), the top graph's with the empty path
    assert all(isinstance(e, tuple) and len(e) == 3 and isinstance(e[0], tuple)
               for e in events)


def test_model_tokens_carry_the_path_of_the_subgraph_that_called_the_model():
    model = ScriptedModel(["hello there"])

    def speak(s):
        return {"log": [model.invoke("hi").content]}

    app = with_subgraph(chain("speak", fns={"speak": speak}, name="agent"), after=False)
    tokens = [(path, chunk.content, node) for path, (chunk, node)
              in app.stream({"log": []}, mode="messages", subgraphs=True) if chunk.content]
    assert tokens == [(("agent",), "hello", "speak"), (("agent",), " there", "speak")]


def test_send_tasks_of_a_subgraph_each_stream_under_its_name():
    def fan(s) -> list[Send]:
        return [Send("sub", {"log": [f"in{i}"]}) for i in range(3)]

    g = StateGraph(State)
    g.add_node("fan", fan)
    g.add_node("sub", chain("s1"))
    g.add_edge(START, "fan")
    g.add_edge("sub", END)
    events = list(g.compile().stream({"log": []}, subgraphs=True))
    assert [e for e in events if e[0] == ("sub",)] == [(("sub",), {"s1": {"log": ["s1"]}})] * 3


def test_subgraph_events_are_live_while_the_subgraph_still_runs():
    """The consumer sees the first inner node's update before the second inner node ends."""
    seen = threading.Event()

    def wait(s):
        assert seen.wait(10), "the consumer never saw the first update"
        return {"log": ["wait"]}

    app = with_subgraph(chain("first", "wait", fns={"wait": wait}))
    for path, update in app.stream({"log": []}, subgraphs=True):
        if path == ("sub",) and "first" in update:
            seen.set()
    assert seen.is_set()


def test_astream_yields_the_same_events_as_stream():
    app = with_subgraph(chain("s1", "s2"))

    async def collect():
        return [e async for e in app.astream({"log": []}, mode=["updates", "custom"],
                                             subgraphs=True)]

    assert asyncio.run(collect()) == list(app.stream({"log": []}, mode=["updates", "custom"],
                                                     subgraphs=True))


# -- graphs invoked from inside a node ----------------------------------------------------------

def caller(inner, *, checkpointer=None, before=None, after=None):
    """A graph whose node "call" invokes ``inner`` and logs its result."""

    def call(s):
        if before:
            before()
        out = inner.invoke({"log": ["x"]})
        if after:
            after()
        return {"log": ["got:" + ",".join(out["log"])]}

    g = StateGraph(State)
    g.add_node("call", call)
    g.add_edge(START, "call")
    g.add_edge("call", END)
    return g.compile(checkpointer=checkpointer, name="caller")


def test_invoke_inside_a_node_returns_the_graph_result():
    assert caller(chain("a", "b")).invoke({"log": []}) == {"log": ["got:x,a,b"]}


def test_invoke_inside_a_node_streams_under_the_invoked_graph_name():
    events = list(caller(chain("a", "b", name="helper")).stream({"log": []}, subgraphs=True))
    assert events[:2] == [(("helper",), {"a": {"log": ["a"]}}),
                          (("helper",), {"b": {"log": ["b"]}})]
    assert events[-1] == ((), {"call": {"log": ["got:x,a,b"]}})


def test_model_calls_inside_count_in_the_run_usage_and_budget(saver):
    model = ScriptedModel(["a fairly long answer " * 10] * 3)

    def ask(s):
        return {"log": [model.invoke("question").content[:5]]}

    app = caller(chain("ask", fns={"ask": ask}), checkpointer=saver)
    thread = uuid.uuid4().hex
    app.invoke({"log": []}, thread=thread)
    usage = app.get_state(thread).metadata["usage"]
    assert usage["output_tokens"] > 40  # the inner call's tokens are the thread's
    with pytest.raises(TokenBudgetExceeded):
        app.invoke({"log": []}, thread=uuid.uuid4().hex, token_budget=10)


def test_a_resumed_node_gets_a_finished_inner_run_back_without_running_it(saver):
    inner_calls = []
    model = ScriptedModel(lambda msgs: "answer")
    failures = []

    def ask(s):
        inner_calls.append(1)
        return {"log": [model.invoke("q").content]}

    def fail_once():
        if not failures:
            failures.append(1)
            raise RuntimeError("after the inner run")

    app = caller(chain("ask", fns={"ask": ask}), checkpointer=saver, after=fail_once)
    thread = uuid.uuid4().hex
    with pytest.raises(RuntimeError, match="after the inner run"):
        app.invoke({"log": []}, thread=thread)
    out = app.invoke(None, thread=thread)
    assert out == {"log": ["got:x,answer"]}
    assert len(inner_calls) == 1 and len(model.calls) == 1


def test_a_failed_inner_run_resumes_where_it_stopped(saver):
    runs = {"a": 0, "b": 0}

    def a(s):
        runs["a"] += 1
        return {"log": ["a"]}

    def b(s):
        runs["b"] += 1
        if runs["b"] == 1:
            raise RuntimeError("b failed")
        return {"log": ["b"]}

    app = caller(chain("a", "b", fns={"a": a, "b": b}), checkpointer=saver)
    thread = uuid.uuid4().hex
    with pytest.raises(RuntimeError, match="b failed"):
        app.invoke({"log": []}, thread=thread)
    assert app.invoke(None, thread=thread) == {"log": ["got:x,a,b"]}
    assert runs == {"a": 1, "b": 2}


def test_an_interrupt_inside_pauses_the_run_and_resumes_in_place(saver):
    runs = []

    def a(s):
        runs.append("a")
        return {"log": ["a"]}

    def ask(s):
        return {"log": [f"answer={interrupt('approve?')}"]}

    app = caller(chain("a", "ask", fns={"a": a, "ask": ask}), checkpointer=saver)
    thread = uuid.uuid4().hex
    paused = app.invoke({"log": []}, thread=thread)
    (pending,) = paused["__interrupt__"]
    assert pending.value == "approve?" and pending.node == "ask"
    assert app.get_state(thread).interrupts == (pending,)
    out = app.invoke(Command(resume="yes"), thread=thread)
    assert out == {"log": ["got:x,a,answer=yes"]}
    assert runs == ["a"]


def test_two_invokes_in_one_node_have_their_own_runs(saver):
    inner = chain("a", name="inner")

    def twice(s):
        one = inner.invoke({"log": ["1"]})
        two = inner.invoke({"log": ["2"]})
        return {"log": [",".join(one["log"]), ",".join(two["log"])]}

    g = StateGraph(State).add_node("twice", twice)
    g.add_edge(START, "twice").add_edge("twice", END)
    app = g.compile(checkpointer=saver)
    assert app.invoke({"log": []}, thread=uuid.uuid4().hex) == {"log": ["1,a", "2,a"]}


def test_invoke_with_a_thread_inside_a_node_stays_a_run_of_its_own():
    saver = MemoryCheckpointer()
    inner = StateGraph(State).add_node("a", lambda s: {"log": ["a"]})
    inner = inner.add_edge(START, "a").add_edge("a", END).compile(saver, name="inner")

    def call(s):
        return {"log": inner.invoke({"log": []}, thread="own")["log"]}

    g = StateGraph(State).add_node("call", call)
    app = g.add_edge(START, "call").add_edge("call", END).compile(saver)
    app.invoke({"log": []}, thread="outer")
    assert inner.get_state("own").values == {"log": ["a"]}


def test_ainvoke_inside_an_async_node_and_async_graphs_inside_sync_nodes(saver):
    async def a(s):
        await asyncio.sleep(0)
        return {"log": ["async-a"]}

    inner = chain("a", fns={"a": a})
    assert inner._has_async

    async def acall(s):
        out = await inner.ainvoke({"log": []})
        return {"log": out["log"]}

    g = StateGraph(State).add_node("acall", acall)
    app = g.add_edge(START, "acall").add_edge("acall", END).compile(saver)
    thread = uuid.uuid4().hex
    assert asyncio.run(app.ainvoke({"log": []}, thread=thread)) == {"log": ["async-a"]}
    # a sync node invoking a graph with async nodes
    assert caller(inner, checkpointer=saver).invoke(
        {"log": []}, thread=uuid.uuid4().hex) == {"log": ["got:x,async-a"]}


def test_command_parent_from_an_invoked_graph_is_a_clear_error():
    inner = chain("hand", fns={"hand": lambda s: Command(graph=Command.PARENT, goto="x")})
    with pytest.raises(InvalidUpdateError, match="invoked from inside a node"):
        caller(inner).invoke({"log": []})


def test_run_context_step_inside_an_invoked_graph_is_journaled(saver):
    effects = []
    failures = []

    def pay(s, ctx: RunContext):
        ctx.step("pay", effects.append, "paid")
        if not failures:
            failures.append(1)
            raise RuntimeError("after paying")
        return {"log": ["paid"]}

    app = caller(chain("pay", fns={"pay": pay}), checkpointer=saver)
    thread = uuid.uuid4().hex
    with pytest.raises(RuntimeError, match="after paying"):
        app.invoke({"log": []}, thread=thread)
    assert app.invoke(None, thread=thread) == {"log": ["got:x,paid"]}
    assert effects == ["paid"]


def test_crash_at_every_boundary_of_invoked_graphs(tmp_path, monkeypatch):
    """Killed at every boundary (the invoked graphs' too), the run resumes to the same end; a
    side effect inside an invoked graph repeats only after a kill between it and its journal
    entry, with the same idempotency key (so an API honouring the key applies it once)."""
    effects = tmp_path / "effects.db"
    monkeypatch.setenv("CRASH_EFFECTS_DB", str(effects))
    report = crash_test("nested_invoke_graph:make", {"log": []},
                        store=f"sqlite:{tmp_path / 'runs.db'}", pythonpath=[SUPPORT],
                        workdir=tmp_path)
    report.check()
    assert report.reference == '{"log":["w0+paid+done","w1+paid+done","end"]}'
    assert {"node", "effect", "journal", "checkpoint"} <= {p.kind for p in report.points}
    repeated = [p for p in report.points if p.repeated_effects]
    assert repeated and all(p.kind == "effect" for p in repeated)
    with sqlite3.connect(effects) as db:
        calls, = db.execute("SELECT count(*) FROM calls").fetchone()
        applied, = db.execute("SELECT count(*) FROM charges").fetchone()
    assert applied == 2 * (len(report.points) + 1)  # two charges per run, each applied once
    # the repeated calls: only after kills at an effect, at most one per such kill
    assert 0 < calls - applied <= sum(p.kind == "effect" for p in report.points)


def test_a_node_that_runs_a_graph_inside_can_be_drawn_as_its_cluster():
    inner = chain("i1", "i2", name="inner")

    def run_inner(s):
        return {"log": inner.invoke({"log": []})["log"]}

    run_inner.graphflow_graph = inner
    run_inner.graphflow_kind = "subgraph"
    g = StateGraph(State).add_node("runner", run_inner)
    app = g.add_edge(START, "runner").add_edge("runner", END).compile()
    drawn = app.get_graph(expand_subgraphs=True)
    assert drawn.nodes["runner:i1"]["cluster"] == ("runner",)
    assert ("runner:i1", "runner:i2") in drawn.edges()
    assert app.invoke({"log": []}) == {"log": ["i1", "i2"]}
