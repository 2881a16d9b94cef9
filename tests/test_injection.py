"""Parameters after the state are filled by name or annotation (ctx/RunContext, store), never by
position alone — except the old ``def node(state, ctx)`` form, which keeps working."""

from __future__ import annotations

import asyncio
import functools
import operator
from typing import TYPE_CHECKING, Annotated, Any, TypedDict

import pytest
from graphflow.tools import tool

from graphflow import END, START, GraphflowError, GraphValidationError, RunContext, StateGraph
from graphflow.graph.nodes import NodeSpec
from graphflow.messages import AIMessage, ToolCall

if TYPE_CHECKING:  # only a name in a string annotation: graphflow must still recognise it
    from graphflow.memory import BaseStore


class S(TypedDict, total=False):
    seen: Annotated[list, operator.add]
    route: str


def _run(fn: Any, *, store: Any = None, invoke_store: Any = None) -> list:
    g = StateGraph(S)
    g.add_node("n", fn)
    g.add_edge(START, "n")
    g.add_edge("n", END)
    return g.compile(store=store).invoke({"seen": []}, store=invoke_store)["seen"]


def _spec(fn: Any) -> NodeSpec:
    return NodeSpec("n", fn, retry=None, timeout=None, metadata=None)


# -- the bug of issue 15 ------------------------------------------------------------------------

def test_a_defaulted_parameter_keeps_its_default_closure_idiom():
    nodes = []
    for ret in ("a", "b"):
        def node(state, ret=ret):
            return {"seen": [ret]}
        nodes.append(node)
    assert _run(nodes[0]) == ["a"]
    assert _run(nodes[1]) == ["b"]
    assert _spec(nodes[0]).plain  # nothing to inject: the engine's fast path


def test_a_defaulted_parameter_of_a_router_keeps_its_default():
    g = StateGraph(S)
    g.add_node("a", lambda s: {"seen": ["a"]})
    g.add_node("b", lambda s: {"seen": ["b"]})
    target = "b"

    def route(state, target=target):
        return target

    g.add_edge(START, "a")
    g.add_conditional_edges("a", route, ["b"])
    g.add_edge("b", END)
    assert g.compile().invoke({"seen": []})["seen"] == ["a", "b"]


# -- the run context ----------------------------------------------------------------------------

def test_old_forms_still_receive_the_context_by_position():
    def named(state, ctx):
        return {"seen": [type(ctx).__name__, ctx.node]}

    def short(s, c):
        return {"seen": [type(c).__name__]}

    assert _run(named) == ["RunContext", "n"]
    assert _run(short) == ["RunContext"]
    assert _run(lambda s, c: {"seen": [type(c).__name__]}) == ["RunContext"]


def test_context_by_name_keyword_only_or_with_a_default():
    def kw(state, *, ctx):
        return {"seen": [ctx.node]}

    def defaulted(state, ctx=None):
        return {"seen": [ctx is not None]}

    assert _run(kw) == ["n"]
    assert _run(defaulted) == [True]


def test_context_by_annotation_any_name_even_as_unresolvable_text():
    def typed(state, run_info: RunContext):
        return {"seen": [run_info.node]}

    def optional(state, info: RunContext | None = None):
        return {"seen": [info.node]}

    def text(state, info: UnknownAlias | RunContext):  # noqa: F821 - never resolved
        return {"seen": [info.node]}

    assert _run(typed) == ["n"]
    assert _run(optional) == ["n"]
    assert _run(text) == ["n"]


def test_callable_objects_and_partials():
    class Node:
        def __call__(self, state, ctx: RunContext | None = None):
            return {"seen": [ctx.node if ctx else None]}

    def base(tag, state, ctx):
        return {"seen": [tag, ctx.node]}

    assert _run(Node()) == ["n"]
    assert _run(functools.partial(base, "p")) == ["p", "n"]


def test_a_required_parameter_nothing_can_fill_is_an_error_naming_it():
    def annotated(state, limit: int):
        return {}

    def third(state, ctx, extra):
        return {}

    g = StateGraph(S)
    with pytest.raises(GraphValidationError, match=r"node 'x': parameter 'limit' has no default"):
        g.add_node("x", annotated)
    with pytest.raises(GraphValidationError, match=r"parameter 'extra'"):
        g.add_node("y", third)
    with pytest.raises(GraphValidationError, match=r"router 'route' on node 'a'.*'limit'"):
        def route(state, limit: int):
            return END
        g.add_conditional_edges("a", route)


# -- the store ----------------------------------------------------------------------------------

class Box:
    """A stand-in store object: injection passes any object given as the store."""

    def __init__(self, name: str) -> None:
        self.name = name


def test_store_by_name_from_compile_and_overridden_per_invoke():
    def node(state, store):
        return {"seen": [store.name]}

    assert _run(node, store=Box("compiled")) == ["compiled"]
    assert _run(node, store=Box("compiled"), invoke_store=Box("given")) == ["given"]
    assert _run(node, invoke_store=Box("only-invoke")) == ["only-invoke"]


def test_store_and_context_together_in_any_order():
    def node(state, store, ctx):
        return {"seen": [store.name, ctx.store.name, ctx.node]}

    def reversed_kw(state, *, ctx: RunContext, store):
        return {"seen": [store.name, ctx.node]}

    assert _run(node, store=Box("s")) == ["s", "s", "n"]
    assert _run(reversed_kw, store=Box("s")) == ["s", "n"]


def test_store_by_annotation_even_as_text_under_type_checking():
    def node(state, memory: BaseStore):
        return {"seen": [memory.name]}

    assert _spec(node).inject.keys == {"store"}
    assert _run(node, store=Box("typed")) == ["typed"]
    with pytest.raises(GraphflowError, match=r"parameter 'memory' needs the run's store"):
        _run(node)


def test_missing_store_default_kept_or_clear_error():
    def optional(state, store=None):
        return {"seen": [store]}

    def required(state, store):
        return {"seen": ["never"]}

    assert _run(optional) == [None]
    with pytest.raises(GraphflowError, match=r"node 'n': parameter 'store' needs the run's store"
                                             r".*compile\(store="):
        _run(required)


def test_async_nodes_and_routers_receive_the_store():
    async def node(state, store):
        await asyncio.sleep(0)
        return {"seen": [store.name]}

    def route(state, store) -> str:
        return END if store.name == "s" else "n"

    g = StateGraph(S)
    g.add_node("n", node)
    g.add_edge(START, "n")
    g.add_conditional_edges("n", route, [END, "n"])
    app = g.compile(store=Box("s"))
    assert asyncio.run(app.ainvoke({"seen": []}))["seen"] == ["s"]
    assert app.invoke({"seen": []})["seen"] == ["s"]


def test_subgraphs_receive_the_parents_store_unless_they_have_their_own():
    def inner(state, store):
        return {"seen": [store.name]}

    sub = StateGraph(S)
    sub.add_node("inner", inner)
    sub.add_edge(START, "inner")
    sub.add_edge("inner", END)
    for own, expected in ((None, "parent"), (Box("own"), "own")):
        g = StateGraph(S)
        g.add_node("sub", sub.compile(name="sub", store=own))
        g.add_edge(START, "sub")
        g.add_edge("sub", END)
        assert g.compile(store=Box("parent")).invoke({"seen": []})["seen"] == [expected]


def test_tools_receive_the_graphs_store_hidden_from_the_schema():
    from graphflow.agents import ToolNode

    @tool
    def save(text: str, store) -> str:
        """Save a text."""
        store.saved.append(text)
        return f"saved in {store.name}"

    assert "store" not in save.schema["properties"]
    assert save.injected == {"store": "store"}

    class S2(TypedDict):
        messages: list

    box = Box("toolbox")
    box.saved = []
    g = StateGraph(S2)
    g.add_node("tools", ToolNode([save]))
    g.add_edge(START, "tools")
    g.add_edge("tools", END)
    call = AIMessage(tool_calls=[ToolCall(name="save", args={"text": "hello"})])
    out = g.compile(store=box).invoke({"messages": [call]})
    assert box.saved == ["hello"]
    assert out["messages"][-1].content == "saved in toolbox"


def test_a_tool_parameter_named_store_with_a_type_is_a_model_argument():
    @tool
    def find(store: str) -> str:
        """Find a shop."""
        return store

    assert "store" in find.schema["properties"] and find.injected == {}
