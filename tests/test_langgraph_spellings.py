"""LangGraph's spellings, accepted at graphflow's API boundary (graphflow/engine/config.py and
docs/from-langgraph.md): config dicts, stream_mode=, snapshots' configs and tasks, the builder's
LangGraph verbs, with_config, get_name, checked compile(checkpointer=True/False),
context_schema, and the messages' LangChain habits."""

from __future__ import annotations

import asyncio
import operator
import uuid
import warnings
from dataclasses import dataclass
from typing import Annotated, Literal

import pytest
import typing_extensions
from pydantic import BaseModel

from graphflow import (
    END,
    START,
    Command,
    GraphflowError,
    GraphValidationError,
    GraphValidationWarning,
    InvalidThreadIdError,
    MessagesState,
    RunnableConfig,
    Runtime,
    StateGraph,
    interrupt,
)
from graphflow.checkpoint import MemoryCheckpointer
from graphflow.messages import AIMessage, HumanMessage, SystemMessage, ToolCall, ToolMessage


class State(typing_extensions.TypedDict):
    text: str
    log: Annotated[list[str], operator.add]


def appender(name):
    def node(state):
        return {"log": [name]}

    node.__name__ = name
    return node


def chain(*names, saver=None, **compile_kw):
    g = StateGraph(State)
    prev = START
    for name in names:
        g.add_node(name, appender(name))
        g.add_edge(prev, name)
        prev = name
    g.add_edge(prev, END)
    return g.compile(checkpointer=saver, **compile_kw)


def cfg(thread, **configurable):
    return {"configurable": {"thread_id": thread, **configurable}}


# -- typing_extensions.TypedDict -------------------------------------------------------------------


def test_a_typing_extensions_typeddict_is_a_state_schema():
    assert chain("a").invoke({"text": "x"}) == {"text": "x", "log": ["a"]}


class Inner(typing_extensions.TypedDict):
    n: int


class Outer(typing_extensions.TypedDict):
    inner: Inner


def test_a_typing_extensions_typeddict_key_is_type_checked_like_typing_s():
    g = StateGraph(Outer)
    g.add_node("bad", lambda s: {"inner": "not a dict"})
    g.add_edge(START, "bad").add_edge("bad", END)
    with pytest.raises(GraphflowError, match="expected Inner"):
        g.compile().invoke({"inner": {"n": 1}})


# -- config dicts ----------------------------------------------------------------------------------


def test_a_config_dict_names_the_thread_positionally_or_by_keyword():
    app = chain("a", saver=MemoryCheckpointer())
    app.invoke({"text": "one"}, cfg("t"))
    out = app.invoke({"text": "two"}, config=cfg("t"))
    assert out == {"text": "two", "log": ["a", "a"]}
    assert app.get_state(cfg("t")).values == app.get_state("t").values == out
    assert [e for e in app.stream({"text": "3"}, cfg("t"))] == [{"a": {"log": ["a"]}}]


def test_an_int_or_uuid_thread_id_is_the_thread_named_by_its_str():
    app = chain("a", saver=MemoryCheckpointer())
    app.invoke({"text": "x"}, cfg(7))
    assert app.get_state("7").values["log"] == ["a"]
    key = uuid.uuid4()
    app.invoke({"text": "y"}, cfg(key))
    assert app.get_state(str(key)).values["text"] == "y"
    with pytest.raises(InvalidThreadIdError, match="must be a str"):
        app.invoke({"text": "z"}, cfg(True))
    with pytest.raises(InvalidThreadIdError, match="empty or blank"):
        app.invoke({"text": "z"}, cfg(" "))


def test_values_given_twice_must_agree():
    app = chain("a", saver=MemoryCheckpointer())
    with pytest.raises(GraphflowError, match=r"thread='a' and the config's .*thread_id='b'"):
        app.invoke({"text": "x"}, cfg("b"), thread="a")
    with pytest.raises(GraphflowError, match="recursion_limit"):
        app.invoke({"text": "x"}, {"recursion_limit": 5}, recursion_limit=6)
    with pytest.raises(GraphflowError, match="stream_mode"):
        app.stream({"text": "x"}, mode="updates", stream_mode="values")
    # the same value twice is fine
    assert app.invoke({"text": "x"}, cfg("b"), thread="b")["log"] == ["a"]


def test_a_bad_config_is_a_clear_error():
    app = chain("a", saver=MemoryCheckpointer())
    with pytest.raises(TypeError, match=r"unknown config key\(s\) \['recursionlimit'\]"):
        app.invoke({"text": "x"}, {"recursionlimit": 3})
    with pytest.raises(TypeError, match="config must be a dict"):
        app.invoke({"text": "x"}, "t1")
    with pytest.raises(GraphflowError, match="checkpoint_ns"):
        app.invoke({"text": "x"}, cfg("t", checkpoint_ns="sub:1"))
    with pytest.raises(GraphflowError, match="names no thread"):
        app.get_state({"configurable": {}})


def test_recursion_limit_from_the_config():
    def again(state) -> Literal["a", "__end__"]:
        return "a"

    g = StateGraph(State)
    g.add_node("a", appender("a"))
    g.add_edge(START, "a")
    g.add_conditional_edges("a", again)
    with pytest.raises(RecursionError) as info:
        g.compile().invoke({"text": ""}, {"recursion_limit": 3})
    assert info.value.limit == 3


def test_nodes_read_the_configurable_values_and_the_thread():
    seen = []

    def node(state, ctx):
        seen.append(ctx.config)
        return None

    g = StateGraph(State)
    g.add_node("n", node)
    g.add_edge(START, "n").add_edge("n", END)
    app = g.compile(checkpointer=MemoryCheckpointer())
    app.invoke({"text": ""}, {"configurable": {"thread_id": "t", "user": "u7"},
                              "tags": ["x"], "recursion_limit": 9})
    assert seen[0]["configurable"] == {"user": "u7", "thread_id": "t", "checkpoint_ns": ""}
    assert seen[0]["tags"] == ["x"] and seen[0]["recursion_limit"] == 9
    app.invoke({"text": ""})  # without a config: the run's own facts only
    assert seen[1]["configurable"] == {"checkpoint_ns": ""}


def test_a_config_thread_id_on_a_graph_without_a_checkpointer_is_read_not_stored():
    """LangGraph runs a graph without a checkpointer whatever thread_id its config names; the
    nodes still read it. graphflow's own ``thread=`` keeps asking for a checkpointer."""
    seen = []

    def node(state, config: RunnableConfig):
        seen.append(config["configurable"]["thread_id"])
        return {"log": ["n"]}

    g = StateGraph(State)
    g.add_node("n", node)
    g.add_edge(START, "n").add_edge("n", END)
    app = g.compile()
    assert app.invoke({"text": "", "log": []}, cfg("t1")) == {"text": "", "log": ["n"]}
    assert app.invoke({"text": "", "log": []}, cfg("t1")) == {"text": "", "log": ["n"]}
    assert seen == ["t1", "t1"]
    with pytest.raises(GraphflowError, match="needs a checkpointer"):
        app.invoke({"text": ""}, thread="t1")
    with pytest.raises(GraphflowError, match="checkpointer"):
        app.get_state(cfg("t1"))


def test_with_config_gives_defaults_that_a_call_overrides():
    seen = []

    def node(state, ctx):
        seen.append(ctx.config["configurable"])
        return None

    g = StateGraph(State)
    g.add_node("n", node)
    g.add_edge(START, "n").add_edge("n", END)
    app = g.compile()
    bound = app.with_config({"configurable": {"user": "a", "lang": "en"}}, recursion_limit=50)
    bound.invoke({"text": ""}, {"configurable": {"user": "b"}})
    assert seen[-1]["user"] == "b" and seen[-1]["lang"] == "en"
    assert app.with_config(run_name="x").get_name() == app.get_name() == "graph"
    with pytest.raises(TypeError, match="unknown config key"):
        app.with_config(recursion=3)


# -- snapshots -------------------------------------------------------------------------------------


def test_snapshots_carry_configs_that_point_back_at_them():
    app = chain("a", "b", saver=MemoryCheckpointer())
    app.invoke({"text": "x"}, cfg("t"))
    history = app.get_state_history(cfg("t"))
    assert [h.next for h in history] == [(), ("b",), ("a",), ("__start__",)]
    for snap in history:
        assert snap.config == {"configurable": {"thread_id": "t", "checkpoint_ns": "",
                                                "checkpoint_id": snap.checkpoint_id}}
        assert app.get_state(snap.config).checkpoint_id == snap.checkpoint_id
    assert history[0].parent_config == history[1].config
    assert history[-1].parent_config is None
    assert [h.checkpoint_id for h in app.get_state_history(cfg("t"), before=history[1].config)
            ] == [h.checkpoint_id for h in history[2:]]
    assert [h.next for h in app.get_state_history(cfg("t"), filter={"source": "input"})] == [
        ("__start__",)]


def test_snapshot_tasks_name_the_due_nodes_and_their_interrupts():
    def ask(state):
        return {"text": interrupt("why?")}

    g = StateGraph(State)
    g.add_node("ask", ask)
    g.add_edge(START, "ask").add_edge("ask", END)
    app = g.compile(checkpointer=MemoryCheckpointer())
    app.invoke({"text": ""}, cfg("t"))
    snap = app.get_state(cfg("t"))
    (task,) = snap.tasks
    assert task.name == "ask" and [i.value for i in task.interrupts] == ["why?"]
    assert task.interrupts == snap.interrupts and task.id == snap.interrupts[0].task
    app.invoke(Command(resume="because"), cfg("t"))
    assert app.get_state(cfg("t")).tasks == ()


def test_update_state_with_a_config_returns_the_new_checkpoint_s_config():
    app = chain("a", "b", saver=MemoryCheckpointer())
    app.invoke({"text": "x"}, cfg("t"))
    new = app.update_state(cfg("t"), {"text": "y"}, "a")  # as_node by position, as LangGraph
    assert new == app.get_state(cfg("t")).config
    assert app.get_state(new).next == ("b",)
    assert isinstance(app.update_state("t", {"text": "z"}), str)  # graphflow's form: the id


def test_replaying_from_the_input_checkpoint_runs_the_input_again():
    app = chain("a", "b", saver=MemoryCheckpointer())
    app.invoke({"text": "x", "log": ["in"]}, cfg("t"))
    first = app.get_state_history(cfg("t"))[-1]
    assert first.values == {"log": []} and first.next == ("__start__",)
    assert app.invoke(None, first.config)["log"] == ["in", "a", "b"]


# -- stream_mode, invoke's LangGraph arguments -----------------------------------------------------


def test_stream_mode_one_mode_or_a_list():
    app = chain("a", "b")
    assert list(app.stream({"text": "x"}, stream_mode="updates")) == [
        {"a": {"log": ["a"]}}, {"b": {"log": ["b"]}}]
    both = list(app.stream({"text": "x"}, stream_mode=["values", "updates"]))
    assert [mode for mode, _ in both] == ["values", "updates", "values", "updates", "values"]


def test_invoke_with_stream_mode_output_keys_and_durability():
    app = chain("a", "b")
    assert app.invoke({"text": "x"}, stream_mode="values") == {"text": "x", "log": ["a", "b"]}
    assert app.invoke({"text": "x"}, stream_mode="updates") == [
        {"a": {"log": ["a"]}}, {"b": {"log": ["b"]}}]
    assert app.invoke({"text": "x"}, output_keys="log") == ["a", "b"]
    assert app.invoke({"text": "x"}, output_keys=["text"]) == {"text": "x"}
    for durability in ("sync", "async", "exit"):
        assert app.invoke({"text": "x"}, durability=durability)["log"] == ["a", "b"]
    with pytest.raises(ValueError, match="durability must be one of"):
        app.invoke({"text": "x"}, durability="never")


# -- the builder's LangGraph verbs -----------------------------------------------------------------


def test_entry_finish_and_conditional_entry_points():
    g = StateGraph(State)
    g.add_node("a", appender("a")).add_node("b", appender("b"))
    g.set_entry_point("a").add_edge("a", "b").set_finish_point("b")
    assert g.compile().invoke({"text": ""})["log"] == ["a", "b"]

    def pick(state) -> Literal["a", "b"]:
        return "b" if state["text"] else "a"

    g = StateGraph(State)
    g.add_node("a", appender("a")).add_node("b", appender("b"))
    g.set_conditional_entry_point(pick)
    g.set_finish_point("a").set_finish_point("b")
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphValidationWarning)
        app = g.compile()
    assert app.invoke({"text": "go"})["log"] == ["b"]
    assert app.invoke({"text": ""})["log"] == ["a"]


def test_a_cycle_that_can_never_reach_end_is_still_a_compile_error():
    g = StateGraph(State)
    g.add_node("a", appender("a")).add_node("b", appender("b"))
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "a")
    with pytest.raises(GraphValidationError, match="no path to END"):
        g.compile()


def test_add_node_takes_retry_policy_as_langgraph_names_it():
    from graphflow import RetryPolicy

    calls = []

    def flaky(state):
        calls.append(1)
        if len(calls) < 2:
            raise ConnectionError("once")
        return {"log": ["ok"]}

    g = StateGraph(State)
    g.add_node("f", flaky, retry_policy=RetryPolicy(initial_interval=0, jitter=False))
    g.add_edge(START, "f").add_edge("f", END)
    assert g.compile().invoke({"text": ""})["log"] == ["ok"]
    with pytest.raises(GraphValidationError, match="disagree"):
        StateGraph(State).add_node("f", flaky, retry=RetryPolicy(max_attempts=2),
                                   retry_policy=RetryPolicy(max_attempts=3))


class Sub(typing_extensions.TypedDict):
    log: Annotated[list[str], operator.add]


def asking_subgraph(checkpointer):
    """(a parent graph with a checkpointer, its subgraph compiled with ``checkpointer``; the
    subgraph's node asks with interrupt())."""
    sb = StateGraph(Sub)
    sb.add_node("ask", lambda state: {"log": [interrupt("sub?")]})
    sb.add_edge(START, "ask").add_edge("ask", END)
    sub = sb.compile(checkpointer=checkpointer)
    parent = StateGraph(State)
    parent.add_node("sub", sub)
    parent.add_edge(START, "sub").add_edge("sub", END)
    return parent.compile(checkpointer=MemoryCheckpointer()), sub


def test_compile_checkpointer_true_lends_a_subgraph_its_parent_s_checkpointer():
    app, sub = asking_subgraph(True)
    assert app.invoke({"text": ""}, cfg("p"))["__interrupt__"][0].value == "sub?"
    assert app.invoke(Command(resume="yes"), cfg("p"))["log"] == ["yes"]
    # on its own, True is no checkpointer: a thread needs a real one
    with pytest.raises(GraphflowError, match="only lends a subgraph"):
        sub.invoke({"log": []}, cfg("alone"))


def test_compile_checkpointer_false_keeps_a_subgraph_out_of_the_checkpoints():
    app, _ = asking_subgraph(False)
    with pytest.raises(GraphflowError, match="without a checkpointer"):
        app.invoke({"text": ""}, cfg("p"))


def test_compile_refuses_what_is_not_a_checkpointer_or_a_cache():
    g = StateGraph(State)
    g.add_node("a", appender("a")).add_edge(START, "a").add_edge("a", END)
    with pytest.raises(GraphValidationError, match="takes a Checkpointer"):
        g.compile(checkpointer="memory")
    with pytest.raises(GraphValidationError, match=r"graphflow\.cache"):
        g.compile(cache={})


# -- context_schema --------------------------------------------------------------------------------


@dataclass
class DataCtx:
    user: str
    greeting: str = "hi"


class PydanticCtx(BaseModel):
    user: str
    greeting: str = "hi"


class DictCtx(typing_extensions.TypedDict):
    user: str


@pytest.mark.parametrize("schema", [DataCtx, PydanticCtx, DictCtx])
def test_a_context_dict_becomes_the_context_schema_s_type(schema):
    seen = []

    def node(state, ctx):
        seen.append(ctx.context)
        return None

    g = StateGraph(State, context_schema=schema)
    g.add_node("n", node)
    g.add_edge(START, "n").add_edge("n", END)
    app = g.compile()
    app.invoke({"text": ""}, context={"user": "ada"})
    if schema is DictCtx:
        assert seen[-1] == {"user": "ada"}
    else:
        assert isinstance(seen[-1], schema) and seen[-1].user == "ada"
        given = schema(user="bob")
        app.invoke({"text": ""}, context=given)
        assert seen[-1] is given
        with pytest.raises(TypeError, match="does not fit the graph's context_schema"):
            app.invoke({"text": ""}, context={"name": "x"})


# -- messages --------------------------------------------------------------------------------------


def test_messages_take_their_content_by_position():
    assert SystemMessage("be terse").content == "be terse"
    assert HumanMessage("hi", name="ada").name == "ada"
    assert ToolMessage("42", tool_call_id="c1").tool_call_id == "c1"
    with pytest.raises(TypeError, match="content twice"):
        HumanMessage("a", content="b")


def test_tool_calls_read_as_dicts():
    msg = AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1}, "id": "c1"}])
    call = msg.tool_calls[0]
    assert isinstance(call, ToolCall)
    assert (call["name"], call["args"], call["id"], call["type"]) == (
        "add", {"a": 1}, "c1", "tool_call")
    assert dict(call) == {"name": "add", "args": {"a": 1}, "id": "c1", "type": "tool_call"}
    assert call.get("missing", 0) == 0
    with pytest.raises(KeyError):
        call["missing"]


def test_messages_state_merges_messages():
    g = StateGraph(MessagesState)
    g.add_node("bot", lambda s: {"messages": [AIMessage(f"you said {s['messages'][-1].content}")]})
    g.add_edge(START, "bot").add_edge("bot", END)
    out = g.compile().invoke({"messages": [("user", "hello")]})
    assert [m.type for m in out["messages"]] == ["human", "ai"]
    assert out["messages"][-1].content == "you said hello"


# -- config and runtime parameters (graph/inject.py) ---------------------------------------------


def test_nodes_and_routers_receive_config_and_runtime_by_annotation_or_name():
    seen = {}

    def by_annotation(state, cfg: RunnableConfig, rt: Runtime[DataCtx]):
        seen["annotated"] = (cfg["configurable"]["user"], rt.context.user)
        rt.stream_writer("hello")
        return None

    def by_name(state, config, runtime):
        seen["named"] = (config["configurable"]["thread_id"], runtime.context.greeting)
        return None

    def route(state, config: RunnableConfig) -> Literal["by_name"]:
        seen["router"] = config["recursion_limit"]
        return "by_name"

    g = StateGraph(State, context_schema=DataCtx)
    g.add_node("by_annotation", by_annotation).add_node("by_name", by_name)
    g.add_edge(START, "by_annotation").add_conditional_edges("by_annotation", route)
    g.add_edge("by_name", END)
    app = g.compile(checkpointer=MemoryCheckpointer())
    events = list(app.stream({"text": ""}, cfg("t", user="u1"), context={"user": "ada"},
                             stream_mode="custom", recursion_limit=20))
    assert events == ["hello"]
    assert seen == {"annotated": ("u1", "ada"), "named": ("t", "hi"), "router": 20}


# -- breakpoints per call ----------------------------------------------------------------------


def test_breakpoints_given_to_one_call_apply_to_that_run_only():
    app = chain("a", "b", "c", saver=MemoryCheckpointer())
    out = app.invoke({"text": "", "log": []}, cfg("t1"), interrupt_before=["c"])
    assert out["log"] == ["a", "b"]
    assert app.get_state(cfg("t1")).next == ("c",)
    assert app.invoke(None, cfg("t1"))["log"] == ["a", "b", "c"]  # no breakpoint this time
    events = list(app.stream({"text": "", "log": []}, cfg("t2"), stream_mode="updates",
                             interrupt_after="*"))
    assert events == [{"a": {"log": ["a"]}}, {"__interrupt__": ()}]  # as LangGraph yields it
    assert app.get_state(cfg("t2")).next == ("b",)
    assert app.invoke({"text": "", "log": []}, cfg("t3"))["log"] == ["a", "b", "c"]


def test_breakpoints_per_call_async():
    app = chain("a", "b", saver=MemoryCheckpointer())

    async def main():
        out = await app.ainvoke({"text": "", "log": []}, cfg("t1"), interrupt_after=["a"])
        assert out["log"] == ["a"]
        return [e async for e in app.astream(None, cfg("t1"), stream_mode="values",
                                             interrupt_before="b")]

    assert asyncio.run(main()) == [{"text": "", "log": ["a"]}]
    assert app.get_state(cfg("t1")).next == ("b",)


def test_star_breaks_on_every_node_and_unknown_nodes_are_named():
    app = chain("a", "b", saver=MemoryCheckpointer(), interrupt_before="*")
    app.invoke({"text": "", "log": []}, cfg("t"))
    assert app.get_state(cfg("t")).next == ("a",)
    with pytest.raises(GraphValidationError, match=r"invoke\(interrupt_before=...\).*'zz'"):
        app.invoke({"text": ""}, cfg("u"), interrupt_before=["zz"])
    with pytest.raises(GraphValidationError, match="unknown node 'zz'"):
        chain("a", saver=MemoryCheckpointer(), interrupt_after=["zz"])
