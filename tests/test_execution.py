"""Running graphs: edges, routers, Send, Command, joins, merging, errors, subgraphs, RunContext.

Written from docs/semantics.md (the contract), from the outside, as a user would.
"""

import itertools
import operator
import threading
from typing import Annotated, Literal, TypedDict

import pytest

from graphflow import (
    END,
    START,
    Command,
    GraphRecursionError,
    InvalidUpdateError,
    RunContext,
    Send,
    StateGraph,
)

pytestmark = pytest.mark.timeout(30)


class LogState(TypedDict, total=False):
    log: Annotated[list, operator.add]
    value: int
    other: int


def appender(name):
    """A node that appends its own name to ``log``."""

    def node(state):
        return {"log": [name]}

    node.__name__ = name
    return node


def noop(state):
    return None


def chain(*names, schema=LogState):
    g = StateGraph(schema)
    for n in names:
        g.add_node(n, appender(n))
    g.add_edge(START, names[0])
    for src, dst in itertools.pairwise(names):
        g.add_edge(src, dst)
    g.add_edge(names[-1], END)
    return g


# --------------------------------------------------------------------------- chains and routers


def test_chain_runs_every_node_once_in_edge_order():
    out = chain("first", "second", "third").compile().invoke({"log": []})
    assert out["log"] == ["first", "second", "third"]


def test_chain_input_is_applied_through_reducer_before_first_node():
    out = chain("a", "b").compile().invoke({"log": ["input"]})
    assert out["log"] == ["input", "a", "b"]


def test_node_returning_none_writes_nothing():
    g = StateGraph(LogState)
    g.add_node("nothing", noop)
    g.add_edge(START, "nothing")
    g.add_edge("nothing", END)
    out = g.compile().invoke({"log": ["x"], "value": 7})
    assert out["log"] == ["x"]
    assert out["value"] == 7


def _router_graph(router, targets, path_map=None):
    g = StateGraph(LogState)
    g.add_node("decide", appender("decide"))
    for t in targets:
        g.add_node(t, appender(t))
        g.add_edge(t, END)
    g.add_edge(START, "decide")
    g.add_conditional_edges("decide", router, path_map)
    return g.compile()


def test_conditional_edge_returning_a_name_runs_only_that_node():
    def route(state) -> Literal["left", "right"]:
        return "left" if state["value"] > 0 else "right"

    app = _router_graph(route, ["left", "right"])
    assert app.invoke({"value": 1})["log"] == ["decide", "left"]
    assert app.invoke({"value": -1})["log"] == ["decide", "right"]


def test_conditional_edge_with_path_map_dict_maps_return_value_to_node():
    def route(state):
        return "yes" if state["value"] > 0 else "no"

    app = _router_graph(route, ["good", "bad"], {"yes": "good", "no": "bad"})
    assert app.invoke({"value": 1})["log"] == ["decide", "good"]
    assert app.invoke({"value": 0})["log"] == ["decide", "bad"]


def test_conditional_edge_returning_end_stops_the_run():
    def route(state) -> Literal["after", "__end__"]:
        return END if state["value"] == 0 else "after"

    app = _router_graph(route, ["after"])
    assert app.invoke({"value": 0})["log"] == ["decide"]
    assert app.invoke({"value": 1})["log"] == ["decide", "after"]


def test_conditional_edge_returning_list_runs_all_in_the_same_step():
    steps = {}

    def make(name):
        def node(state, ctx):
            steps[name] = ctx.superstep
            return {"log": [name]}

        return node

    def route(state) -> Literal["b", "c", "d"]:
        return ["c", "b"]

    g = StateGraph(LogState)
    g.add_node("a", appender("a"))
    for n in ("b", "c", "d"):
        g.add_node(n, make(n))
        g.add_edge(n, END)
    g.add_edge(START, "a")
    g.add_conditional_edges("a", route)
    out = g.compile().invoke({})
    assert out["log"] == ["a", "b", "c"]
    assert steps == {"b": 2, "c": 2}


def test_router_runs_on_the_merged_state_after_the_step():
    # "a" and "b" run in the same step; the router on "a" must see "b"'s write too.
    def a(state):
        return {"value": 1}

    def b(state):
        return {"other": 2}

    def route(state) -> Literal["saw_both", "saw_only_own"]:
        return "saw_both" if state.get("other") == 2 and state.get("value") == 1 else "saw_only_own"

    g = StateGraph(LogState)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_node("saw_both", appender("saw_both"))
    g.add_node("saw_only_own", appender("saw_only_own"))
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    g.add_edge("b", END)
    g.add_conditional_edges("a", route)
    g.add_edge("saw_both", END)
    g.add_edge("saw_only_own", END)
    out = g.compile().invoke({})
    assert out["log"] == ["saw_both"]


# --------------------------------------------------------------------------- Send


class FanState(TypedDict, total=False):
    items: list
    item: int
    results: Annotated[list, operator.add]
    total: int


def _fanout_graph(received, reduce_calls, *, via_router):
    lock = threading.Lock()

    def worker(state):
        with lock:
            received.append(dict(state))
        return {"results": [state["item"] * 10]}

    def reduce(state):
        reduce_calls.append(list(state["results"]))
        return {"total": sum(state["results"])}

    def sends(state):
        return [Send("worker", {"item": x}) for x in state["items"]]

    g = StateGraph(FanState)
    g.add_node("worker", worker)
    g.add_node("reduce", reduce)
    g.add_edge("worker", "reduce")
    g.add_edge("reduce", END)
    if via_router:
        g.add_node("prep", noop)
        g.add_edge(START, "prep")
        g.add_conditional_edges("prep", sends, ["worker"])
    else:

        def fan(state) -> Command[Literal["worker"]]:  # the hint declares where it can go
            return sends(state)

        g.add_node("fan", fan)
        g.add_edge(START, "fan")
    return g.compile()


@pytest.mark.parametrize("via_router", [True, False], ids=["router", "node"])
def test_send_fanout_runs_one_task_per_send_with_arg_as_input(via_router):
    received, reduce_calls = [], []
    app = _fanout_graph(received, reduce_calls, via_router=via_router)
    out = app.invoke({"items": [1, 2, 3]})
    assert sorted(r["item"] for r in received) == [1, 2, 3]
    for r in received:
        assert r == {"item": r["item"]}, "a Send task's input is exactly Send.arg"
    assert out["results"] == [10, 20, 30]
    assert out["total"] == 60
    assert reduce_calls == [[10, 20, 30]], "reduce runs once, after all Send tasks merged"


def test_send_to_same_node_twice_with_equal_args_runs_two_tasks():
    received, reduce_calls = [], []
    app = _fanout_graph(received, reduce_calls, via_router=True)
    out = app.invoke({"items": [4, 4]})
    assert len(received) == 2
    assert out["results"] == [40, 40]


def _reverse_finish_gate(n):
    """Task i waits until every task j > i has finished: finish order is reversed."""
    done = [threading.Event() for _ in range(n)]
    finished = []
    lock = threading.Lock()

    def run(i, value):
        for j in range(i + 1, n):
            done[j].wait(timeout=5)
        with lock:
            finished.append(value)
        done[i].set()

    return run, finished


def test_send_merge_order_follows_send_order_not_finish_order():
    args = [30, 10, 20]
    run, finished = _reverse_finish_gate(len(args))

    def worker(state):
        run(state["idx"], state["item"])
        return {"results": [state["item"]]}

    class S(TypedDict, total=False):
        idx: int
        item: int
        results: Annotated[list, operator.add]

    def fan(state):
        return [Send("worker", {"idx": i, "item": v}) for i, v in enumerate(args)]

    g = StateGraph(S)
    g.add_node("prep", noop)
    g.add_node("worker", worker)
    g.add_edge(START, "prep")
    g.add_conditional_edges("prep", fan, ["worker"])
    g.add_edge("worker", END)
    out = g.compile().invoke({})
    assert finished == [20, 10, 30], "precondition: tasks finished in reverse Send order"
    assert out["results"] == [30, 10, 20]


def test_parallel_merge_order_is_by_node_name_not_finish_order():
    names = ["alpha", "bravo", "charlie"]
    run, finished = _reverse_finish_gate(len(names))

    def make(i, name):
        def node(state):
            run(i, name)
            return {"log": [name]}

        return node

    g = StateGraph(LogState)
    # Added in non-alphabetical order on purpose: the order of add_node must not matter either.
    for i, name in sorted(enumerate(names), key=lambda p: p[1][::-1]):
        g.add_node(name, make(i, name))
        g.add_edge(START, name)
        g.add_edge(name, END)
    out = g.compile().invoke({})
    assert finished == ["charlie", "bravo", "alpha"], "precondition: alpha finished last"
    assert out["log"] == ["alpha", "bravo", "charlie"]


# --------------------------------------------------------------------------- Command


def test_command_goto_replaces_static_edges():
    ran = []

    def a(state) -> Command[Literal["jumped"]]:
        ran.append("a")
        return Command(update={"log": ["a"]}, goto="jumped")

    def static_target(state):
        ran.append("static_target")
        return {"log": ["static_target"]}

    g = StateGraph(LogState)
    g.add_node("a", a)
    g.add_node("static_target", static_target)
    g.add_node("jumped", appender("jumped"))
    g.add_edge(START, "a")
    g.add_edge("a", "static_target")  # static edge that goto must override
    g.add_edge("static_target", END)
    g.add_edge("jumped", END)
    out = g.compile().invoke({})  # (compile may warn: static edges + Command hint)
    assert out["log"] == ["a", "jumped"]
    assert "static_target" not in ran


def test_command_goto_replaces_conditional_edges():
    router_calls = []

    def a(state) -> Command[Literal["jumped", "routed"]]:
        return Command(update={"value": 5}, goto="jumped")

    def route(state) -> Literal["routed"]:
        router_calls.append(1)
        return "routed"

    g = StateGraph(LogState)
    g.add_node("a", a)
    g.add_node("jumped", appender("jumped"))
    g.add_node("routed", appender("routed"))
    g.add_edge(START, "a")
    g.add_conditional_edges("a", route)
    g.add_edge("jumped", END)
    g.add_edge("routed", END)
    out = g.compile().invoke({})
    assert out["log"] == ["jumped"]
    assert out["value"] == 5


def test_command_goto_list_and_send():
    def a(state) -> Command[Literal["b", "c"]]:
        return Command(update={"log": ["a"]}, goto=["b", Send("c", {"log": ["sent"]})])

    def c(state):
        return {"log": ["c:" + ",".join(state["log"])]}

    g = StateGraph(LogState)
    g.add_node("a", a)
    g.add_node("b", appender("b"))
    g.add_node("c", c)
    g.add_edge(START, "a")
    g.add_edge("b", END)
    g.add_edge("c", END)
    out = g.compile().invoke({})
    assert out["log"] == ["a", "b", "c:sent"]


def test_command_update_is_applied_like_a_dict_return():
    def a(state) -> Command[Literal["b"]]:
        return Command(update={"log": ["a"], "value": 3}, goto="b")

    def b(state):
        return {"value": state["value"] + 1}

    g = StateGraph(LogState)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_edge(START, "a")
    g.add_edge("b", END)
    out = g.compile().invoke({"log": ["in"]})
    assert out["log"] == ["in", "a"]
    assert out["value"] == 4


# --------------------------------------------------------------------------- joins


def test_join_runs_once_after_sources_finish_in_different_steps():
    calls = []

    def c(state):
        calls.append(list(state["log"]))
        return {"log": ["c"]}

    g = StateGraph(LogState)
    g.add_node("a", appender("a"))
    g.add_node("pre", appender("pre"))
    g.add_node("b", appender("b"))
    g.add_node("c", c)
    g.add_edge(START, "a")
    g.add_edge(START, "pre")
    g.add_edge("pre", "b")  # b finishes one step after a
    g.add_edge(["a", "b"], "c")
    g.add_edge("c", END)
    out = g.compile().invoke({})
    assert len(calls) == 1, f"join node ran {len(calls)} times"
    assert calls[0] == ["a", "pre", "b"], "join ran before both sources had run"
    assert out["log"] == ["a", "pre", "b", "c"]


def test_join_waits_for_all_three_sources():
    calls = []

    def j(state):
        calls.append(sorted(state["log"]))
        return None

    g = StateGraph(LogState)
    for n in ("x", "y", "z"):
        g.add_node(n, appender(n))
    g.add_node("y2", appender("y2"))
    g.add_node("z2", appender("z2"))
    g.add_node("z3", appender("z3"))
    g.add_node("j", j)
    g.add_edge(START, "x")
    g.add_edge(START, "y")
    g.add_edge(START, "z")
    g.add_edge("y", "y2")
    g.add_edge("z", "z2")
    g.add_edge("z2", "z3")
    g.add_edge(["x", "y2", "z3"], "j")
    g.add_edge("j", END)
    g.compile().invoke({})
    assert calls == [sorted(["x", "y", "z", "y2", "z2", "z3"])]


def test_node_reached_by_several_plain_edges_in_one_step_runs_once():
    calls = []

    def c(state):
        calls.append(1)
        return {"log": ["c"]}

    g = StateGraph(LogState)
    g.add_node("a", appender("a"))
    g.add_node("b", appender("b"))
    g.add_node("c", c)
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    g.add_edge("a", "c")
    g.add_edge("b", "c")
    g.add_edge("c", END)
    out = g.compile().invoke({})
    assert calls == [1]
    assert out["log"] == ["a", "b", "c"]


# --------------------------------------------------------------------------- write conflicts


def test_two_parallel_writes_to_plain_key_raise_invalid_update_naming_key_and_nodes():
    def writer_one(state):
        return {"value": 1}

    def writer_two(state):
        return {"value": 2}

    g = StateGraph(LogState)
    g.add_node("writer_one", writer_one)
    g.add_node("writer_two", writer_two)
    g.add_edge(START, "writer_one")
    g.add_edge(START, "writer_two")
    g.add_edge("writer_one", END)
    g.add_edge("writer_two", END)
    with pytest.raises(InvalidUpdateError) as info:
        g.compile().invoke({})
    msg = str(info.value)
    assert "value" in msg
    assert "writer_one" in msg
    assert "writer_two" in msg
    assert info.value.key == "value"


def test_parallel_writes_to_reducer_key_do_not_conflict():
    g = StateGraph(LogState)
    for n in ("a", "b"):
        g.add_node(n, appender(n))
        g.add_edge(START, n)
        g.add_edge(n, END)
    assert g.compile().invoke({})["log"] == ["a", "b"]


# --------------------------------------------------------------------------- recursion limit


def _loop_graph():
    def ping(state):
        return {"value": state.get("value", 0) + 1}

    def pong(state):
        return None

    def back(state) -> Literal["ping", "__end__"]:
        return "ping"

    g = StateGraph(LogState)
    g.add_node("ping", ping)
    g.add_node("pong", pong)
    g.add_edge(START, "ping")
    g.add_edge("ping", "pong")
    g.add_conditional_edges("pong", back)
    return g.compile()


def test_recursion_limit_raises_naming_looping_nodes():
    with pytest.raises(GraphRecursionError) as info:
        _loop_graph().invoke({"value": 0}, recursion_limit=5)
    err = info.value
    assert isinstance(err, RecursionError)
    msg = str(err)
    assert "ping" in msg
    assert "pong" in msg
    assert "recursion_limit" in msg
    assert err.limit == 5
    assert set(err.nodes) == {"ping", "pong"}


def test_recursion_limit_counts_supersteps_the_input_step_included():
    # as LangGraph counts them: applying the input is a superstep, so a limit of 7 leaves 6
    calls = []

    def tick(state):
        calls.append(1)
        return {"value": state["value"] + 1}

    def again(state) -> Literal["tick", "__end__"]:
        return "tick"

    g = StateGraph(LogState)
    g.add_node("tick", tick)
    g.add_edge(START, "tick")
    g.add_conditional_edges("tick", again)
    with pytest.raises(GraphRecursionError):
        g.compile().invoke({"value": 0}, recursion_limit=7)
    assert len(calls) == 6


def test_default_recursion_limit_lets_a_thousand_step_loop_finish():
    def tick(state):
        return {"value": state["value"] + 1}

    def again(state) -> Literal["tick", "__end__"]:
        return "tick" if state["value"] < 1000 else END

    g = StateGraph(LogState)
    g.add_node("tick", tick)
    g.add_edge(START, "tick")
    g.add_conditional_edges("tick", again)
    assert g.compile().invoke({"value": 0})["value"] == 1000


# --------------------------------------------------------------------------- node errors


def test_exception_in_node_reaches_the_caller_as_itself_saying_where():
    original = ValueError("boom")

    def bad(state):
        raise original

    g = StateGraph(LogState)
    g.add_node("ok", appender("ok"))
    g.add_node("bad", bad)
    g.add_edge(START, "ok")
    g.add_edge("ok", "bad")
    g.add_edge("bad", END)
    with pytest.raises(ValueError) as info:
        g.compile().invoke({})
    assert info.value is original
    assert info.value.graphflow_node == "bad"
    assert info.value.graphflow_step == 2
    assert info.value.graphflow_thread is None
    assert "raised in node 'bad', superstep 2" in "\n".join(info.value.__notes__)


def test_exception_in_router_reaches_the_caller_as_itself_naming_router_and_node():
    original = KeyError("nope")

    def route(state) -> Literal["b", "__end__"]:
        raise original

    g = StateGraph(LogState)
    g.add_node("source", appender("source"))
    g.add_node("b", appender("b"))
    g.add_edge(START, "source")
    g.add_conditional_edges("source", route)
    g.add_edge("b", END)
    with pytest.raises(KeyError) as info:
        g.compile().invoke({})
    assert info.value is original
    assert info.value.graphflow_node == "source"
    assert "raised in router 'route' on node 'source'" in "\n".join(info.value.__notes__)


def test_failure_in_one_parallel_task_lets_the_others_finish():
    failed = threading.Event()
    side_effects = []

    def a_fails(state):
        failed.set()
        raise RuntimeError("a failed")

    def b_finishes(state):
        failed.wait(timeout=5)  # only finish after a has already failed
        side_effects.append("b done")
        return {"log": ["b"]}

    g = StateGraph(LogState)
    g.add_node("a_fails", a_fails)
    g.add_node("b_finishes", b_finishes)
    for n in ("a_fails", "b_finishes"):
        g.add_edge(START, n)
        g.add_edge(n, END)
    with pytest.raises(RuntimeError, match="a failed") as info:
        g.compile().invoke({})
    assert info.value.graphflow_node == "a_fails"
    assert side_effects == ["b done"]


def test_first_failing_task_in_name_order_is_raised_not_first_to_fail():
    b_failed = threading.Event()

    def a(state):
        b_failed.wait(timeout=5)
        raise ValueError("from a")

    def b(state):
        b_failed.set()
        raise KeyError("from b")

    g = StateGraph(LogState)
    g.add_node("a", a)
    g.add_node("b", b)
    for n in ("a", "b"):
        g.add_edge(START, n)
        g.add_edge(n, END)
    with pytest.raises(ValueError, match="from a") as info:
        g.compile().invoke({})
    assert info.value.graphflow_node == "a"


def test_failing_step_does_not_start_the_next_step():
    ran_next = []

    def bad(state):
        raise RuntimeError("x")

    def after(state):
        ran_next.append(1)

    g = StateGraph(LogState)
    g.add_node("good", appender("good"))
    g.add_node("bad", bad)
    g.add_node("after", after)
    g.add_edge(START, "good")
    g.add_edge(START, "bad")
    g.add_edge("good", "after")
    g.add_edge("bad", END)
    g.add_edge("after", END)
    with pytest.raises(RuntimeError):
        g.compile().invoke({})
    assert ran_next == []


# --------------------------------------------------------------------------- subgraphs


class ParentState(TypedDict, total=False):
    topic: str
    notes: Annotated[list, operator.add]
    parent_only: int


class ChildState(TypedDict, total=False):
    topic: str
    notes: Annotated[list, operator.add]


def _child(note, seen=None, *, name=None):
    def work(state):
        if seen is not None:
            seen.append(dict(state))
        return {"notes": [note]}

    g = StateGraph(ChildState)
    g.add_node("work", work)
    g.add_edge(START, "work")
    g.add_edge("work", END)
    return g.compile(name=name)


def test_subgraph_node_receives_only_the_keys_it_declares():
    seen = []
    g = StateGraph(ParentState)
    g.add_node("sub", _child("n", seen))
    g.add_edge(START, "sub")
    g.add_edge("sub", END)
    out = g.compile().invoke({"topic": "t", "notes": ["p"], "parent_only": 3})
    assert len(seen) == 1
    assert "parent_only" not in seen[0]
    assert seen[0]["topic"] == "t"
    assert out["parent_only"] == 3


def test_parallel_subgraphs_leaving_plain_key_unchanged_do_not_conflict():
    g = StateGraph(ParentState)
    g.add_node("sub_one", _child("from_one"))
    g.add_node("sub_two", _child("from_two"))
    for n in ("sub_one", "sub_two"):
        g.add_edge(START, n)
        g.add_edge(n, END)
    out = g.compile().invoke({"topic": "shared", "notes": []})
    assert out["topic"] == "shared"
    assert out["notes"] == ["from_one", "from_two"]


def test_subgraph_appending_to_reducer_list_appends_once_in_parent():
    g = StateGraph(ParentState)
    g.add_node("sub", _child("child"))
    g.add_node("after", lambda s: {"notes": ["after"]})
    g.add_edge(START, "sub")
    g.add_edge("sub", "after")
    g.add_edge("after", END)
    out = g.compile().invoke({"notes": ["parent"]})
    assert out["notes"] == ["parent", "child", "after"]


def test_subgraph_changing_plain_key_returns_new_value():
    def rename(state):
        return {"topic": state["topic"].upper()}

    c = StateGraph(ChildState)
    c.add_node("rename", rename)
    c.add_edge(START, "rename")
    c.add_edge("rename", END)
    g = StateGraph(ParentState)
    g.add_node("sub", c.compile())
    g.add_edge(START, "sub")
    g.add_edge("sub", END)
    assert g.compile().invoke({"topic": "abc"})["topic"] == "ABC"


def test_compiled_graph_added_without_name_uses_its_name():
    g = StateGraph(ParentState)
    g.add_node(_child("x", name="researcher"))
    g.add_edge(START, "researcher")
    g.add_edge("researcher", END)
    assert g.compile().invoke({})["notes"] == ["x"]


# --------------------------------------------------------------------------- RunContext


def _ctx_graph(records, checkpointer=None):
    def make(name):
        def node(state, ctx: RunContext):
            records.append(
                {
                    "node": ctx.node,
                    "superstep": ctx.superstep,
                    "context": ctx.context,
                    "thread": ctx.thread,
                    "task_id": ctx.task_id,
                    "attempt": ctx.attempt,
                }
            )
            return {"log": [name]}

        return node

    g = StateGraph(LogState)
    g.add_node("first", make("first"))
    g.add_node("second", make("second"))
    g.add_edge(START, "first")
    g.add_edge("first", "second")
    g.add_edge("second", END)
    return g.compile(checkpointer=checkpointer)


def test_run_context_reports_node_superstep_and_context():
    records = []
    marker = object()
    _ctx_graph(records).invoke({}, context=marker)
    assert [r["node"] for r in records] == ["first", "second"]
    assert [r["superstep"] for r in records] == [1, 2]
    assert all(r["context"] is marker for r in records)
    assert all(r["thread"] is None for r in records)
    assert all(r["attempt"] == 1 for r in records)


def test_run_context_thread_is_the_invoke_thread():
    from graphflow.checkpoint import MemoryCheckpointer

    records = []
    _ctx_graph(records, MemoryCheckpointer()).invoke({}, thread="t-42")
    assert [r["thread"] for r in records] == ["t-42", "t-42"]


def test_router_gets_run_context_too():
    seen = []

    def route(state, ctx) -> Literal["b"]:
        seen.append((ctx.node, ctx.context))
        return "b"

    g = StateGraph(LogState)
    g.add_node("a", appender("a"))
    g.add_node("b", appender("b"))
    g.add_edge(START, "a")
    g.add_conditional_edges("a", route)
    g.add_edge("b", END)
    g.compile().invoke({}, context="ctx-obj")
    assert seen == [("a", "ctx-obj")]


def test_task_id_is_deterministic_across_identical_runs():
    first, second = [], []
    _ctx_graph(first).invoke({"log": ["same"]})
    _ctx_graph(second).invoke({"log": ["same"]})
    ids_first = [r["task_id"] for r in first]
    ids_second = [r["task_id"] for r in second]
    assert all(isinstance(i, str) and i for i in ids_first)
    assert ids_first == ids_second
    assert ids_first[0] != ids_first[1], "different tasks get different ids"


def test_send_tasks_to_same_node_get_distinct_task_ids():
    ids = []
    lock = threading.Lock()

    def worker(state, ctx):
        with lock:
            ids.append(ctx.task_id)

    def fan(state):
        return [Send("worker", {"item": i}) for i in range(3)]

    g = StateGraph(FanState)
    g.add_node("prep", noop)
    g.add_node("worker", worker)
    g.add_edge(START, "prep")
    g.add_conditional_edges("prep", fan, ["worker"])
    g.add_edge("worker", END)
    g.compile().invoke({})
    assert len(ids) == 3
    assert len(set(ids)) == 3
