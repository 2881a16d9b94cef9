"""Features graphflow gained for graphs brought over from LangGraph (issue 10): input and output
schemas and private state, managed values, deferred nodes, node caching, get_graph()'s LangGraph
face, the aligned semantics (key order, recursion limit, values stream, exceptions) and the
deliberate differences of docs/from-langgraph.md, each tested here."""

import asyncio
import operator
import sqlite3
import subprocess
import sys
import threading
from typing import Annotated, Any, Literal, TypedDict

import networkx as nx
import pytest

from graphflow import (
    END,
    START,
    CachePolicy,
    Command,
    GraphflowError,
    GraphRecursionError,
    InvalidUpdateError,
    IsLastStep,
    NodeError,
    RemainingSteps,
    Send,
    StateGraph,
    get_config,
    get_stream_writer,
    interrupt,
)
from graphflow.cache import InMemoryCache, SqliteCache
from graphflow.checkpoint import MemoryCheckpointer, SqliteCheckpointer


class Overall(TypedDict):
    question: str
    draft: str
    answer: str


class Ask(TypedDict):
    question: str


class Reply(TypedDict):
    answer: str


class Scratch(TypedDict):
    notes: str


# -- input / output schemas, private state ------------------------------------------------------


def io_graph(seen: dict[str, Any], saver=None):
    def start(state: Ask) -> Overall:
        seen["start"] = dict(state)
        return {"draft": state["question"] + "?"}

    def think(state: Overall) -> Scratch:
        seen["think"] = dict(state)
        return {"notes": state["draft"] + " hmm"}

    def answer(state: Scratch) -> Reply:
        seen["answer"] = dict(state)
        return {"answer": state["notes"] + "!"}

    def plain(state):
        seen["plain"] = dict(state)

    g = StateGraph(Overall, input_schema=Ask, output_schema=Reply)
    g.add_sequence([start, think, answer, plain])
    g.add_edge(START, "start").add_edge("plain", END)
    return g.compile(checkpointer=saver)


def test_nodes_read_their_input_schema_and_pass_private_keys():
    seen: dict[str, Any] = {}
    app = io_graph(seen, MemoryCheckpointer())
    assert app.invoke({"question": "why"}, thread="t") == {"answer": "why? hmm!"}
    assert seen["start"] == {"question": "why"}
    assert seen["think"] == {"question": "why", "draft": "why?"}
    assert seen["answer"] == {"notes": "why? hmm"}  # a key the state schema does not have
    assert seen["plain"] == {"question": "why", "draft": "why?", "answer": "why? hmm!"}
    # snapshots and the "values" stream show every key, the state's first
    assert list(app.get_state("t").values) == ["question", "draft", "answer", "notes"]
    last = list(app.stream({"question": "q"}, thread="u", mode="values"))[-1]
    assert last == {"question": "q", "draft": "q?", "answer": "q? hmm!", "notes": "q? hmm"}


def test_an_input_key_outside_the_input_schema_is_refused():
    app = io_graph({})
    with pytest.raises(InvalidUpdateError,
                       match=r"input key 'draft' is not among the graph's input keys \(question"):
        app.invoke({"question": "q", "draft": "x"})


def test_add_node_input_schema_names_what_a_node_reads():
    seen = []
    g = StateGraph(Overall)
    g.add_node("n", lambda s: seen.append(s), input_schema=Ask)
    g.add_edge(START, "n").add_edge("n", END)
    g.compile().invoke({"question": "q", "draft": "d", "answer": "a"})
    assert seen == [{"question": "q"}]


# -- managed values ----------------------------------------------------------------------------


class Looping(TypedDict):
    count: int
    seen: Annotated[list, operator.add]
    remaining: RemainingSteps
    last: IsLastStep


def looping_graph(stop_at: int | None = None):
    def tick(state: Looping):
        return {"count": state["count"] + 1, "seen": [(state["remaining"], state["last"])]}

    def again(state: Looping) -> Literal["tick", "__end__"]:
        if stop_at is not None and state["remaining"] <= stop_at:
            return END
        return "tick"

    g = StateGraph(Looping)
    g.add_node("tick", tick)
    g.add_edge(START, "tick")
    g.add_conditional_edges("tick", again)
    return g.compile()


def test_remaining_steps_and_is_last_step_count_down_to_the_limit():
    out = looping_graph(stop_at=1).invoke({"count": 0}, recursion_limit=5)
    # the input takes one of the 5 supersteps; 4 are left for tick, the last one flagged
    assert out == {"count": 4, "seen": [(4, False), (3, False), (2, False), (1, True)]}
    assert "remaining" not in out and "last" not in out
    with pytest.raises(GraphRecursionError):
        looping_graph().invoke({"count": 0}, recursion_limit=5)


def test_a_managed_value_cannot_be_written():
    g = StateGraph(Looping)
    g.add_node("w", lambda s: {"remaining": 3})
    g.add_edge(START, "w").add_edge("w", END)
    with pytest.raises(InvalidUpdateError, match="unknown key 'remaining'"):
        g.compile().invoke({"count": 0})


# -- recursion limit, counted as LangGraph counts it --------------------------------------------


def test_the_recursion_limit_counts_the_input_step_and_resumes_count_from_zero():
    def again(state: Looping) -> Literal["tick", "__end__"]:
        return "tick" if state["count"] < 3 else END

    g = StateGraph(Looping)
    g.add_node("tick", lambda s: {"count": s["count"] + 1})
    g.add_edge(START, "tick")
    g.add_conditional_edges("tick", again)
    app = g.compile(checkpointer=MemoryCheckpointer())
    with pytest.raises(GraphRecursionError):  # 1 input step + 3 ticks > 3
        app.invoke({"count": 0}, recursion_limit=3)
    assert app.invoke({"count": 0}, recursion_limit=4)["count"] == 3
    # a resumed run applies no input: all of its limit goes to the nodes
    with pytest.raises(GraphRecursionError):
        app.invoke({"count": 0}, thread="t", recursion_limit=3)
    assert app.get_state("t").values["count"] == 2
    assert app.invoke(None, thread="t", recursion_limit=1)["count"] == 3


# -- defer --------------------------------------------------------------------------------------


class Agg(TypedDict):
    order: Annotated[list, operator.add]


def deferred_graph(saver=None, ask_in=None):
    def node(name):
        def fn(state):
            if name == ask_in:
                interrupt("go?")
            return {"order": [name]}

        fn.__name__ = name
        return fn

    g = StateGraph(Agg)
    for name in ("a", "b", "b2", "b3", "c"):
        g.add_node(name, node(name))
    g.add_node("d", node("d"), defer=True)
    g.add_edge(START, "a")
    g.add_edge("a", "b").add_edge("a", "c")
    g.add_edge("b", "b2").add_edge("b2", "b3").add_edge("b3", "d").add_edge("c", "d")
    g.add_edge("d", END)
    return g.compile(checkpointer=saver)


def test_a_deferred_node_runs_once_after_every_other_branch():
    assert deferred_graph().invoke({"order": []})["order"] == ["a", "b", "c", "b2", "b3", "d"]


def test_a_deferred_node_waiting_is_in_the_checkpoint_and_survives_a_pause():
    app = deferred_graph(MemoryCheckpointer(), ask_in="b2")
    app.invoke({"order": []}, thread="t")
    assert sorted(app.get_state("t").next) == ["b2", "d"]  # d waits, stored with the step
    assert app.invoke(Command(resume="yes"), thread="t")["order"] == [
        "a", "b", "c", "b2", "b3", "d"]


# -- node caching -------------------------------------------------------------------------------


class Calc(TypedDict):
    x: int
    y: int


def cached_graph(cache, calls, **policy):
    def double(state: Calc):
        calls.append(state["x"])
        return {"y": state["x"] * 2}

    g = StateGraph(Calc)
    g.add_node("double", double, cache_policy=CachePolicy(**policy))
    g.add_edge(START, "double").add_edge("double", END)
    return g.compile(cache=cache)


@pytest.mark.parametrize("make", [InMemoryCache, lambda: SqliteCache(":memory:")])
def test_a_cached_node_runs_once_per_input(make):
    calls: list[int] = []
    app = cached_graph(make(), calls)
    assert [app.invoke({"x": x})["y"] for x in (1, 1, 2, 1)] == [2, 2, 4, 2]
    assert calls == [1, 2]
    assert asyncio.run(app.ainvoke({"x": 2}))["y"] == 4 and calls == [1, 2]


def test_cache_entries_expire_after_their_ttl(monkeypatch):
    import graphflow.cache as cache_module

    now = [1000.0]
    monkeypatch.setattr(cache_module.time, "time", lambda: now[0])
    calls: list[int] = []
    app = cached_graph(InMemoryCache(), calls, ttl=60)
    app.invoke({"x": 1})
    now[0] += 59
    app.invoke({"x": 1})
    assert calls == [1]
    now[0] += 2
    app.invoke({"x": 1})
    assert calls == [1, 1]


def test_a_key_func_decides_what_counts_as_the_same_input():
    calls: list[int] = []
    app = cached_graph(InMemoryCache(), calls, key_func=lambda s: str(s["x"] % 2))
    assert [app.invoke({"x": x})["y"] for x in (1, 3, 2)] == [2, 2, 4]
    assert calls == [1, 2]


def test_a_sqlite_cache_is_shared_through_its_file(tmp_path):
    path = tmp_path / "cache.db"
    calls: list[int] = []
    cached_graph(SqliteCache(path), calls).invoke({"x": 5})
    other: list[int] = []
    assert cached_graph(SqliteCache(path), other).invoke({"x": 5})["y"] == 10
    assert calls == [5] and other == []


def test_a_cached_command_keeps_its_goto_and_without_a_cache_nothing_is_cached():
    calls = []

    def decide(state: Calc) -> Command[Literal["left", "right"]]:
        calls.append(1)
        return Command(update={"y": 1}, goto="left" if state["x"] else "right")

    g = StateGraph(Calc)
    g.add_node("decide", decide, cache_policy=CachePolicy())
    g.add_node("left", lambda s: {"y": 10}).add_node("right", lambda s: {"y": 20})
    g.add_edge(START, "decide").add_edge("left", END).add_edge("right", END)
    app = g.compile(cache=InMemoryCache())
    assert [app.invoke({"x": 1})["y"] for _ in range(2)] == [10, 10] and len(calls) == 1
    g.compile().invoke({"x": 1})
    g.compile().invoke({"x": 1})
    assert len(calls) == 3


# -- get_graph(): networkx, with LangGraph's edges and drawing calls -----------------------------


def routed():
    def route(state: Calc) -> Literal["b", "__end__"]:
        return "b"

    g = StateGraph(Calc)
    g.add_node("a", lambda s: None).add_node("b", lambda s: None)
    g.add_edge(START, "a").add_conditional_edges("a", route).add_edge("b", END)
    return g.compile()


def test_get_graph_is_networkx_and_answers_langgraph_s_calls(tmp_path):
    drawn = routed().get_graph()
    assert isinstance(drawn, nx.MultiDiGraph)
    assert sorted((e.source, e.target, e.conditional) for e in drawn.edges) == [
        (START, "a", False), ("a", END, True), ("a", "b", True), ("b", END, False)]
    assert all(e.data == drawn.edges[e]["label"] for e in drawn.edges)  # the router's labels
    assert set(drawn.edges()) == {(START, "a"), ("a", "b"), ("a", END), ("b", END)}
    plain = drawn.to_networkx()
    assert type(plain) is nx.MultiDiGraph and nx.is_isomorphic(plain, drawn)
    assert "flowchart" in drawn.draw_mermaid()
    assert "a" in drawn.draw_ascii()
    png = drawn.draw_mermaid_png(output_file_path=tmp_path / "g.png")
    assert png.startswith(b"\x89PNG") and (tmp_path / "g.png").read_bytes() == png


# -- the "values" stream ------------------------------------------------------------------------


def test_values_stream_skips_steps_that_wrote_nothing_and_starts_a_resume_with_the_state():
    def ask(state: Calc):
        return {"y": interrupt("y?")}

    g = StateGraph(Calc)
    g.add_node("look", lambda s: None).add_node("ask", ask)
    g.add_edge(START, "look").add_edge("look", "ask").add_edge("ask", END)
    app = g.compile(checkpointer=MemoryCheckpointer())
    first = list(app.stream({"x": 1}, thread="t", mode="values"))
    assert first[0] == {"x": 1}
    assert first[1]["__interrupt__"][0].value == "y?" and len(first) == 2
    assert list(app.stream(Command(resume=5), thread="t", mode="values")) == [
        {"x": 1}, {"x": 1, "y": 5}]


def test_state_comes_back_in_schema_key_order():
    g = StateGraph(Overall)
    g.add_node("n", lambda s: {"answer": "a", "question": "q"})
    g.add_edge(START, "n").add_edge("n", END)
    app = g.compile(checkpointer=MemoryCheckpointer())
    out = app.invoke({"draft": "d"}, thread="t")
    assert list(out) == list(app.get_state("t").values) == ["question", "draft", "answer"]


# -- exceptions reach the caller as themselves --------------------------------------------------


def test_an_exception_in_a_parallel_async_or_sub_graph_node_reaches_the_caller_as_itself():
    class Boom(Exception):
        pass

    async def async_bad(state: Calc):
        raise Boom("async")

    g = StateGraph(Calc)
    g.add_node("bad", async_bad).add_node("ok", lambda s: None)
    g.add_edge(START, "bad").add_edge(START, "ok").add_edge("bad", END).add_edge("ok", END)
    with pytest.raises(Boom, match="async") as info:
        g.compile().invoke({"x": 1})
    assert info.value.graphflow_node == "bad" and info.value.graphflow_step == 1

    inner = StateGraph(Calc)
    inner.add_node("deep", lambda s: {}["missing"])
    inner.add_edge(START, "deep").add_edge("deep", END)
    outer = StateGraph(Calc)
    outer.add_node("sub", inner.compile())
    outer.add_edge(START, "sub").add_edge("sub", END)
    with pytest.raises(KeyError) as info:
        outer.compile(checkpointer=MemoryCheckpointer()).invoke({"x": 1}, thread="t")
    assert info.value.graphflow_node == "deep"  # where it was raised
    assert info.value.__notes__[0].startswith("raised in node 'deep', superstep 1")
    assert info.value.__notes__[1].startswith("through node 'sub' of graph 'graph'")


def test_a_timeout_is_still_a_node_error():
    release = threading.Event()

    def slow(state: Calc):
        release.wait(10)

    g = StateGraph(Calc)
    g.add_node("slow", slow, timeout=0.05)
    g.add_edge(START, "slow").add_edge("slow", END)
    try:
        with pytest.raises(NodeError, match="timed out"):
            g.compile().invoke({"x": 1})
    finally:
        release.set()


def test_a_type_error_in_a_write_says_how_to_relax_the_check():
    g = StateGraph(Calc)
    g.add_node("n", lambda s: {"y": "2"})
    g.add_edge(START, "n").add_edge("n", END)
    with pytest.raises(InvalidUpdateError, match=r"widen the key's annotation .*Any"):
        g.compile().invoke({"x": 1})


# -- stream writers, get_config -------------------------------------------------------------------


def test_get_stream_writer_and_get_config_inside_a_node():
    def node(state: Calc):
        get_stream_writer()({"step": "working"})
        return {"y": len(get_config()["configurable"]["user"])}

    g = StateGraph(Calc)
    g.add_node("n", node)
    g.add_edge(START, "n").add_edge("n", END)
    events = list(g.compile().stream({"x": 1}, {"configurable": {"user": "ada"}},
                                     stream_mode=["custom", "values"]))
    assert events == [("values", {"x": 1}), ("custom", {"step": "working"}),
                      ("values", {"x": 1, "y": 3})]
    with pytest.raises(GraphflowError, match="inside a running graph node"):
        get_stream_writer()


# -- SqliteSaver's spellings ----------------------------------------------------------------------


def test_a_sqlite_checkpointer_from_a_connection_or_a_conn_string(tmp_path):
    path = tmp_path / "runs.db"
    conn = sqlite3.connect(path)
    g = StateGraph(Calc)
    g.add_node("n", lambda s: {"y": s["x"] + 1})
    g.add_edge(START, "n").add_edge("n", END)
    g.compile(checkpointer=SqliteCheckpointer(conn)).invoke({"x": 1}, thread="t")
    with SqliteCheckpointer.from_conn_string(str(path)) as saver:
        assert g.compile(checkpointer=saver).get_state("t").values == {"x": 1, "y": 2}
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0  # still open
    with pytest.raises(ValueError, match="in-memory database"):
        SqliteCheckpointer(sqlite3.connect(":memory:"))


# -- a node without outgoing edges: a warning, silenced by filterwarnings too ----------------------


def test_the_no_outgoing_edge_warning_can_be_silenced_by_category():
    code = (
        "import warnings\n"
        "from typing import TypedDict\n"
        "from graphflow import StateGraph, START, GraphValidationWarning\n"
        "warnings.simplefilter('ignore', GraphValidationWarning)\n"
        "class S(TypedDict):\n    x: int\n"
        "g = StateGraph(S)\ng.add_node('n', lambda s: None)\ng.add_edge(START, 'n')\n"
        "print(g.compile().invoke({'x': 1}))\n")
    run = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", code],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "{'x': 1}" and run.stderr == ""


def test_send_to_a_node_with_an_input_schema_hands_it_the_send_s_argument():
    class Job(TypedDict):
        n: int

    def fan(state: Calc):
        return [Send("work", {"n": i}) for i in range(3)]

    seen = []
    g = StateGraph(Calc)
    g.add_node("work", lambda s: seen.append(s["n"]), input_schema=Job)
    g.add_conditional_edges(START, fan, ["work"])
    g.add_edge("work", END)
    g.compile().invoke({"x": 0})
    assert sorted(seen) == [0, 1, 2]


def test_get_state_with_subgraphs_shows_where_an_interrupted_subgraph_stopped():
    def ask(state: Calc):
        return {"y": interrupt("y?")}

    inner = StateGraph(Calc)
    inner.add_node("pre", lambda s: {"x": s["x"] + 1}).add_node("ask", ask)
    inner.add_edge(START, "pre").add_edge("pre", "ask").add_edge("ask", END)
    outer = StateGraph(Calc)
    outer.add_node("sub", inner.compile()).add_node("after", lambda s: None)
    outer.add_edge(START, "sub").add_edge("sub", "after").add_edge("after", END)
    app = outer.compile(checkpointer=MemoryCheckpointer())
    app.invoke({"x": 1}, thread="t")
    assert app.get_state("t").tasks[0].state is None  # only when asked for
    (task,) = app.get_state("t", subgraphs=True).tasks
    sub = task.state
    assert (task.name, sub.values, sub.next) == ("sub", {"x": 2}, ("ask",))
    assert sub.tasks[0].interrupts[0].value == "y?"
    assert sub.config["configurable"]["checkpoint_ns"] != ""  # the subgraph run's namespace
    app.invoke(Command(resume=5), thread="t")
    assert app.get_state("t", subgraphs=True).tasks == ()


def test_a_graph_invoked_in_a_node_with_the_node_s_config_runs_as_its_subgraph():
    # LangGraph's habit: subgraph.invoke(x, config) inside a node, passing the node's config on
    inner = StateGraph(Calc)
    inner.add_node("double", lambda s: {"y": s["x"] * 2})
    inner.add_edge(START, "double").add_edge("double", END)
    sub = inner.compile()

    def call(state: Calc, config):
        return {"y": sub.invoke({"x": state["x"]}, config)["y"]}

    outer = StateGraph(Calc)
    outer.add_node("call", call)
    outer.add_edge(START, "call").add_edge("call", END)
    saver = MemoryCheckpointer()
    app = outer.compile(checkpointer=saver)
    assert app.invoke({"x": 4}, {"configurable": {"thread_id": "t"}})["y"] == 8
    assert saver.namespaces("t")  # the inner run lives in a namespace of the thread
    assert [h.next for h in app.get_state_history("t")] == [(), ("call",), ("__start__",)]


# -- stream modes "tasks" and "checkpoints" -----------------------------------------------------


def test_tasks_mode_yields_each_task_s_start_and_result():
    def ask(state: Calc):
        return {"y": interrupt("y?")}

    g = StateGraph(Calc)
    g.add_node("double", lambda s: {"x": s["x"] * 2}).add_node("ask", ask)
    g.add_edge(START, "double").add_edge("double", "ask").add_edge("ask", END)
    app = g.compile(checkpointer=MemoryCheckpointer())
    events = list(app.stream({"x": 3}, thread="t", stream_mode="tasks"))
    assert [(e["name"], sorted(e)) for e in events] == [
        ("double", ["id", "input", "name"]),
        ("double", ["error", "id", "interrupts", "name", "result"]),
        ("ask", ["id", "input", "name"]),
        ("ask", ["error", "id", "interrupts", "name", "result"]),
    ]
    assert events[0]["input"] == {"x": 3} and events[1]["result"] == {"x": 6}
    assert events[0]["id"] == events[1]["id"] != events[2]["id"]
    assert [i.value for i in events[3]["interrupts"]] == ["y?"]
    due = app.get_state("t").tasks[0]
    assert due.id == events[2]["id"]  # the ids are the snapshot's task ids
    done = list(app.stream(Command(resume=1), thread="t", stream_mode="tasks"))
    assert done[-1]["result"] == {"y": 1} and done[-1]["error"] is None


def test_checkpoints_mode_yields_what_the_history_holds_as_it_is_stored():
    g = StateGraph(Calc)
    g.add_node("a", lambda s: {"x": s["x"] + 1}).add_node("b", lambda s: {"y": s["x"] * 10})
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", END)
    app = g.compile(checkpointer=MemoryCheckpointer())
    config = {"configurable": {"thread_id": "t"}}
    streamed = list(app.stream({"x": 1}, config, stream_mode=["checkpoints", "updates"]))
    cps = [payload for mode, payload in streamed if mode == "checkpoints"]
    history = list(reversed(app.get_state_history(config)))
    assert [c["next"] for c in cps] == [["__start__"], ["a"], ["b"], []]
    assert [c["config"] for c in cps] == [h.config for h in history]
    assert [c["parent_config"] for c in cps] == [h.parent_config for h in history]
    assert [c["values"] for c in cps] == [h.values for h in history]
    assert cps[-1]["values"] == {"x": 2, "y": 20}
    assert [t["name"] for t in cps[1]["tasks"]] == ["a"]
    assert cps[1]["tasks"][0]["id"] == history[1].tasks[0].id
    # a checkpoint is streamed after the step's updates: what it records already happened
    kinds = [mode for mode, _ in streamed]
    assert kinds.index("updates") < kinds.index("checkpoints", 2)
